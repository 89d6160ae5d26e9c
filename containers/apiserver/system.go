package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

// BootRecord is what PID 1 writes at the end of the boot
// (/run/kurma/boot.json) for Info to show.
type BootRecord struct {
	Phases  []BootPhase `json:"phases"`
	TotalMs int64       `json:"total_ms"`
}

// BootPhase is one phase of the boot timeline.
type BootPhase struct {
	Name      string `json:"name"`
	Ms        int64  `json:"ms"`
	Essential bool   `json:"essential"`
	Error     string `json:"error,omitempty"`
}

type systemService struct{ s *Server }

func (ss systemService) Info(ctx context.Context, _ *connect.Request[kurmav1.InfoRequest]) (*connect.Response[kurmav1.InfoResponse], error) {
	s := ss.s
	host, _ := os.Hostname()
	var uts unix.Utsname
	_ = unix.Uname(&uts) // cannot fail on Linux
	info := &kurmav1.InfoResponse{
		Version:  s.Version,
		Hostname: host,
		Kernel:   unix.ByteSliceToString(uts.Release[:]),
		KurmaOs:  s.Power != nil,
		Role:     string(RoleOf(ctx)),
		Images:   int32(len(s.Images.List())),
	}
	if bt, err := bootTime(); err == nil {
		info.BootedAt = timestamppb.New(bt)
	}
	if s.Capacity != nil {
		info.Capacity = s.Capacity()
	} else {
		info.Capacity = HostCapacity()
	}
	if s.PodCounts != nil {
		total, running := s.PodCounts()
		info.Pods, info.PodsRunning = int32(total), int32(running)
	}
	if s.BootFile != "" {
		if data, err := os.ReadFile(s.BootFile); err == nil {
			var rec BootRecord
			if json.Unmarshal(data, &rec) == nil {
				info.BootTotalMs = rec.TotalMs
				for _, p := range rec.Phases {
					info.Boot = append(info.Boot, &kurmav1.BootPhase{Name: p.Name, Ms: p.Ms, Essential: p.Essential, Error: p.Error})
				}
			}
		}
	}
	return connect.NewResponse(info), nil
}

// HostCapacity is the machine's CPU and memory, all of it allocatable.
func HostCapacity() *kurmav1.Capacity {
	cpu := int64(runtime.NumCPU()) * 1000
	mem := memTotal()
	return &kurmav1.Capacity{CpuTotal: cpu, CpuAllocatable: cpu, MemoryTotal: mem, MemoryAllocatable: mem}
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// bootTime reads the kernel's boot time (btime of /proc/stat).
func bootTime() (time.Time, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Unix(sec, 0), err
		}
	}
	return time.Time{}, os.ErrNotExist
}

func (ss systemService) Reboot(ctx context.Context, _ *connect.Request[kurmav1.RebootRequest]) (*connect.Response[kurmav1.RebootResponse], error) {
	return connect.NewResponse(&kurmav1.RebootResponse{}), ss.power(ctx, "reboot")
}

func (ss systemService) Poweroff(ctx context.Context, _ *connect.Request[kurmav1.PoweroffRequest]) (*connect.Response[kurmav1.PoweroffResponse], error) {
	return connect.NewResponse(&kurmav1.PoweroffResponse{}), ss.power(ctx, "poweroff")
}

func (ss systemService) power(ctx context.Context, action string) error {
	if ss.s.Power == nil {
		return connect.NewError(connect.CodeFailedPrecondition, errorf("%s: this daemon does not run on the Kurma OS; it will not %s its host", action, action))
	}
	ss.s.Events.Publish("system", "", "", action, "")
	return apiError(ss.s.Power(ctx, action))
}

func (ss systemService) Events(ctx context.Context, _ *connect.Request[kurmav1.EventsRequest], stream *connect.ServerStream[kurmav1.Event]) error {
	events, stop := ss.s.Events.Subscribe()
	defer stop()
	// Headers go out at once, so the client knows it is subscribed.
	if err := stream.Conn().Send(nil); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

func (ss systemService) Config(ctx context.Context, _ *connect.Request[kurmav1.ConfigRequest]) (*connect.Response[kurmav1.ConfigResponse], error) {
	if ss.s.Config == nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errorf("config: this daemon was started without a configuration"))
	}
	y, errs, err := ss.s.Config()
	if err != nil {
		return nil, apiError(err)
	}
	return connect.NewResponse(&kurmav1.ConfigResponse{Yaml: y, Errors: errs}), nil
}
