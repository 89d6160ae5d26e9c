package pod

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// startTime reads the start time of a process, in clock ticks since boot
// (/proc/PID/stat field 22): with the PID it names a process uniquely.
func startTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted after its last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := bytes.Fields(data[i+1:])
	const startField = 22 - 3 // fields 3.. follow the name
	if len(fields) <= startField {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	return strconv.ParseUint(string(fields[startField]), 10, 64)
}
