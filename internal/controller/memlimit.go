package controller

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// MemoryLimitAuto is --memory-limit's default: a share of the container's memory limit.
const MemoryLimitAuto = "auto"

// autoShare is the part of the container's memory limit given to the Go runtime as its soft
// limit: the runtime counts its heap, stacks and own structures, not the binary's pages nor
// what the kernel charges the container besides, so the collector must work harder a little
// before the kernel's limit, not at it.
const autoShare = 0.9

// applyMemoryLimit gives the Go runtime the soft memory limit --memory-limit says, before
// the cache fills.
func applyMemoryLimit(ctx context.Context, spec string) error {
	limit, from, err := memoryLimit(spec, os.LookupEnv, os.DirFS("/"))
	if err != nil {
		return err
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	logf.FromContext(ctx).Info("Go soft memory limit", "bytes", limit, "from", from)
	return nil
}

// memoryLimit resolves --memory-limit into the Go runtime's soft memory limit in bytes (0:
// none, the runtime's own default of collecting when the heap doubles) and says where it
// came from, for the log.
//
// Why a limit at all: the collector lets the heap grow to twice what the last collection
// left live (GOGC=100), whatever memory the process may use. After a restart at 100,000 pods
// the cache holds about 530 MB live while every pod's first event is handled, and the heap
// reached its goal of twice that (1.06 GB, 1.19 GiB resident): garbage, not data. A soft limit
// makes the collector run more often as the heap nears it instead, and only then.
//
// spec is "auto" (a share of the cgroup's memory limit read from root, none without one, and
// none either when GOMEMLIMIT is set: the runtime has read it already), "none" or "0", or a
// quantity such as 900Mi. getenv is os.LookupEnv.
func memoryLimit(spec string, getenv func(string) (string, bool), root fs.FS) (int64, string, error) {
	switch strings.TrimSpace(spec) {
	case "none", "0":
		return 0, "none (--memory-limit)", nil
	case "", MemoryLimitAuto:
		if v, ok := getenv("GOMEMLIMIT"); ok {
			return 0, "GOMEMLIMIT=" + v + " (the runtime's own)", nil
		}
		limit, file, err := cgroupMemoryLimit(root)
		if err != nil {
			return 0, "", fmt.Errorf("--memory-limit=auto: %w", err)
		}
		if limit == 0 {
			return 0, "none (no cgroup memory limit)", nil
		}
		return int64(float64(limit) * autoShare), fmt.Sprintf("%.0f%% of %s (%d bytes)", autoShare*100, file, limit), nil
	}
	q, err := resource.ParseQuantity(spec)
	if err != nil || q.Sign() <= 0 {
		return 0, "", fmt.Errorf("--memory-limit %q: want auto, none or a size such as 900Mi", spec)
	}
	return q.Value(), "--memory-limit=" + spec, nil
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup under root (the container's
// own, with a cgroup namespace): cgroup v2's memory.max, else v1's memory.limit_in_bytes. 0
// when there is none ("max", v1's huge "unlimited" value, or neither file).
func cgroupMemoryLimit(root fs.FS) (int64, string, error) {
	for _, file := range []string{"sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := fs.ReadFile(root, file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("reading /%s: %w", file, err)
		}
		v := strings.TrimSpace(string(data))
		if v == "max" {
			return 0, "/" + file, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, "", fmt.Errorf("/%s holds %q, not a size", file, v)
		}
		// cgroup v1 says "unlimited" with the largest page-aligned int64.
		if n >= math.MaxInt64/2 {
			return 0, "/" + file, nil
		}
		return n, "/" + file, nil
	}
	return 0, "", nil
}
