package benchkit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux ABI.
const userHZ = 100

// ProcessCPU returns the CPU time (user + system, all threads) process pid
// used so far, from /proc/<pid>/stat, in steps of 10 ms.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	return parseProcessCPU(b)
}

// parseProcessCPU reads utime and stime from the text of /proc/<pid>/stat.
func parseProcessCPU(b []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("cpu time: malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("cpu time: short /proc stat")
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// ProcessGroup is a named set of local processes whose CPU time a
// benchmark accounts for, such as "broker" (the RabbitMQ node) or
// "database" (the MariaDB server): the processes that compete with the
// code under test for the machine's CPUs.
type ProcessGroup struct {
	Name string
	PIDs []int
}

// FindProcesses returns the group of the running processes whose command
// name (/proc/<pid>/comm) is one of commands. The group is empty when none
// runs here (a remote server, or no /proc).
func FindProcesses(name string, commands ...string) ProcessGroup {
	g := ProcessGroup{Name: name}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return g
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		if err != nil {
			continue // gone meanwhile
		}
		for _, c := range commands {
			if strings.TrimSpace(string(comm)) == c {
				g.PIDs = append(g.PIDs, pid)
				break
			}
		}
	}
	return g
}

// ProcessSample is a reading of the CPU time of process groups, by group
// name. A group that could not be read is missing from it.
type ProcessSample map[string]time.Duration

// SampleProcesses reads the CPU time of every group: the sum over its
// processes. An empty group, or one of whose processes is gone, is left
// out.
func SampleProcesses(groups ...ProcessGroup) ProcessSample {
	s := make(ProcessSample, len(groups))
	for _, g := range groups {
		if len(g.PIDs) == 0 {
			continue
		}
		var sum time.Duration
		ok := true
		for _, pid := range g.PIDs {
			d, err := ProcessCPU(pid)
			if err != nil {
				ok = false
				break
			}
			sum += d
		}
		if ok {
			s[g.Name] = sum
		}
	}
	return s
}

// Since returns the CPU time each group used from a to s: the groups read
// in both.
func (s ProcessSample) Since(a ProcessSample) ProcessSample {
	out := make(ProcessSample, len(s))
	for name, d := range s {
		if before, ok := a[name]; ok && d >= before {
			out[name] = d - before
		}
	}
	return out
}
