package controller

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestMemoryLimit: --memory-limit's default follows the container's cgroup limit (v2 or v1)
// and leaves the runtime alone without one or when GOMEMLIMIT is set; an explicit size is
// taken as it is; nonsense is refused.
func TestMemoryLimit(t *testing.T) {
	v2 := func(v string) fstest.MapFS { return fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte(v + "\n")}} }
	v1 := func(v string) fstest.MapFS {
		return fstest.MapFS{"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte(v + "\n")}}
	}
	tests := map[string]struct {
		spec    string
		env     map[string]string
		root    fstest.MapFS
		want    int64
		wantErr string
	}{
		"auto, cgroup v2 limit of 1 GiB":       {spec: "auto", root: v2("1073741824"), want: 966367641},
		"auto, cgroup v2 without a limit":      {spec: "auto", root: v2("max")},
		"auto, cgroup v1 limit of 512 MiB":     {spec: "auto", root: v1("536870912"), want: 483183820},
		"auto, cgroup v1 unlimited":            {spec: "auto", root: v1("9223372036854771712")},
		"auto, no cgroup files":                {spec: "auto", root: fstest.MapFS{}},
		"auto, GOMEMLIMIT set: the runtime's":  {spec: "auto", env: map[string]string{"GOMEMLIMIT": "700MiB"}, root: v2("1073741824")},
		"empty is auto":                        {spec: "", root: v2("1073741824"), want: 966367641},
		"auto, a cgroup file holding nonsense": {spec: "auto", root: v2("lots"), wantErr: "not a size"},
		"none":                                 {spec: "none", root: v2("1073741824")},
		"zero is none":                         {spec: "0", root: v2("1073741824")},
		"a size":                               {spec: "900Mi", root: v2("1073741824"), want: 900 << 20},
		"a size in bytes":                      {spec: "1000000000", want: 1_000_000_000},
		"not a size":                           {spec: "lots", wantErr: "want auto, none or a size"},
		"negative":                             {spec: "-1Gi", wantErr: "want auto, none or a size"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			getenv := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			root := tc.root
			if root == nil {
				root = fstest.MapFS{}
			}
			got, from, err := memoryLimit(tc.spec, getenv, root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("memoryLimit(%q) = %d, %v; want an error with %q", tc.spec, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want || from == "" {
				t.Fatalf("memoryLimit(%q) = %d (from %q), %v; want %d", tc.spec, got, from, err, tc.want)
			}
		})
	}
}
