package pod

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// ErrNoCapacity is wrapped by the error of a pod whose requests do not
// fit in what the machine has left.
var ErrNoCapacity = errors.New("not enough capacity")

// Capacity is the machine's CPU (millicores) and memory (bytes): the
// total, what pods may request (the total less the reserve), and what
// the pods that run request.
type Capacity struct {
	CPUTotal, CPUAllocatable, CPURequested          int64
	MemoryTotal, MemoryAllocatable, MemoryRequested int64
}

// hostTotals reads the machine's CPUs and memory.
func hostTotals() (cpu, mem int64) {
	cpu = int64(runtime.NumCPU()) * 1000
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return cpu, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return cpu, kb * 1024
		}
	}
	return cpu, 0
}

// Capacity reports the machine's capacity and what the pods hold of it.
// A pod holds its requests from its creation until it has ended.
func (m *Manager) Capacity() Capacity {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.capacityLocked()
}

func (m *Manager) capacityLocked() Capacity {
	c := Capacity{CPUTotal: m.cpuTotal, MemoryTotal: m.memTotal}
	c.CPUAllocatable = max(c.CPUTotal-m.opts.ReservedCPU, 0)
	c.MemoryAllocatable = max(c.MemoryTotal-m.opts.ReservedMemory, 0)
	for _, p := range m.pods {
		p.mu.Lock()
		if !p.rec.State.Ended() && p.rec.State != Removing && p.rec.State != Removed {
			c.CPURequested += p.rec.CPURequest
			c.MemoryRequested += p.rec.MemoryRequest
		}
		p.mu.Unlock()
	}
	return c
}

// fitsLocked checks that requests fit in what is left. The caller holds
// m.mu.
func (m *Manager) fitsLocked(cpu, mem int64) error {
	if cpu == 0 && mem == 0 {
		return nil
	}
	c := m.capacityLocked()
	cpuLeft, memLeft := c.CPUAllocatable-c.CPURequested, c.MemoryAllocatable-c.MemoryRequested
	if cpu <= cpuLeft && mem <= memLeft {
		return nil
	}
	return fmt.Errorf("%w: the pod requests %s of CPU and %s of memory; %s of CPU and %s of memory are left (allocatable %s and %s, pods hold %s and %s)",
		ErrNoCapacity, Cores(cpu), Bytes(mem), Cores(max(cpuLeft, 0)), Bytes(max(memLeft, 0)),
		Cores(c.CPUAllocatable), Bytes(c.MemoryAllocatable), Cores(c.CPURequested), Bytes(c.MemoryRequested))
}

// Cores prints millicores as cores.
func Cores(milli int64) string {
	if milli%1000 == 0 {
		return fmt.Sprintf("%d cores", milli/1000)
	}
	return fmt.Sprintf("%.3g cores", float64(milli)/1000)
}

// Bytes prints a size in bytes with a binary unit.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for q := n / unit; q >= unit; q /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
