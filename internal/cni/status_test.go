package cni_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containernetworking/cni/libcni"
	cnitypes "github.com/containernetworking/cni/pkg/types"

	"github.com/podsg/podsg/internal/agentapi"
	"github.com/podsg/podsg/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m)
}

// TestStatus runs the built plugin's CNI 1.1 STATUS through libcni, as a runtime polls it:
// success while the node agent answers on its socket, error 50 ("the plugin is not available")
// when the socket is missing, left by a dead agent, or held by one that does not answer.
func TestStatus(t *testing.T) {
	binDir := filepath.Dir(testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-cni"))
	tests := map[string]struct {
		agent    func(t *testing.T, socket string)
		wantCode uint // 0: success
	}{
		"agent answers":          {agent: serveStatus(http.StatusOK)},
		"no socket":              {agent: func(*testing.T, string) {}, wantCode: 50},
		"socket of a dead agent": {agent: deadSocket, wantCode: 50},
		"agent never answers":    {agent: silentSocket, wantCode: 50},
		"agent answers an error": {agent: serveStatus(http.StatusInternalServerError), wantCode: 50},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			socket := filepath.Join(t.TempDir(), "agent.sock")
			tc.agent(t, socket)
			list := conflist(t, "1.1.0", socket)
			err := libcni.NewCNIConfig([]string{binDir}, nil).GetStatusNetworkList(context.WithoutCancel(t.Context()), list)
			if tc.wantCode == 0 {
				if err != nil {
					t.Fatalf("STATUS = %v, want success", err)
				}
				return
			}
			var ce *cnitypes.Error
			if !errors.As(err, &ce) || ce.Code != tc.wantCode {
				t.Fatalf("STATUS = %#v, want CNI error %d", err, tc.wantCode)
			}
			t.Logf("STATUS: %v", err)
		})
	}
}

// TestVersionAdvertisesStatus: the plugin speaks CNI 1.1.0, the version that has STATUS.
func TestVersionAdvertisesStatus(t *testing.T) {
	binDir := filepath.Dir(testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-cni"))
	info, err := libcni.NewCNIConfig([]string{binDir}, nil).GetVersionInfo(context.WithoutCancel(t.Context()), "podsg-cni")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.SupportedVersions(); !slices.Contains(got, "1.1.0") || !slices.Contains(got, "1.0.0") {
		t.Fatalf("VERSION lists %v, want 1.0.0 and 1.1.0", got)
	}
}

func conflist(t *testing.T, version, socket string) *libcni.NetworkConfigList {
	t.Helper()
	data, err := json.Marshal(map[string]any{"cniVersion": version, "name": "podsg", "plugins": []any{
		map[string]any{"type": "podsg-cni", "agentSocket": socket, "agentTimeout": "1s"}}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// serveStatus serves the agent's status path on socket, answering code.
func serveStatus(code int) func(t *testing.T, socket string) {
	return func(t *testing.T, socket string) {
		l, err := net.Listen("unix", socket)
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET "+agentapi.PathStatus, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(code)
			_, _ = w.Write([]byte("{}"))
		})
		srv := &http.Server{Handler: mux}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
}

// deadSocket leaves the socket file of an agent that has exited: connecting is refused.
func deadSocket(t *testing.T, socket string) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// silentSocket listens and never accepts: the kernel completes connections into the backlog,
// so only the plugin's timeout ends the wait.
func silentSocket(t *testing.T, socket string) {
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
}
