package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/podsg/podsg/internal/podstate"
)

// Paths served by the agent.
const (
	PathAdd = "/v1/add"
	PathDel = "/v1/del"
	// PathStatus answers GET with 200 once the agent serves ADDs: the plugin's CNI STATUS.
	PathStatus = "/v1/status"
)

// AddRequest asks the agent to allocate a pod's network. The agent answers with the
// podstate.Record it has written: what the plugin must build.
type AddRequest struct {
	ContainerID  string `json:"containerID"`
	IfName       string `json:"ifName"`
	Netns        string `json:"netns"`
	PodNamespace string `json:"podNamespace"`
	PodName      string `json:"podName"`
	PodUID       string `json:"podUID,omitempty"`
}

// DelRequest tells the agent a container's network is gone: it releases the IP (regular pods)
// and deletes the record.
type DelRequest struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
}

// Error is the body of a non-2xx answer.
type Error struct {
	Message string `json:"error"`
	// Retryable marks transient conditions (annotation not there yet, no free IP yet), which
	// the plugin reports as such so that kubelet's retry is expected rather than alarming.
	Retryable bool `json:"retryable,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// ErrUnavailable wraps failures to reach the agent at all.
var ErrUnavailable = errors.New("node agent unavailable")

// Client talks to the agent's socket.
type Client struct {
	http *http.Client
}

// NewClient returns a client for the agent listening on socketPath.
func NewClient(socketPath string, timeout time.Duration) *Client {
	return &Client{http: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		}},
	}}
}

// Add asks for a pod's network.
func (c *Client) Add(ctx context.Context, req AddRequest) (*podstate.Record, error) {
	rec := &podstate.Record{}
	if err := c.post(ctx, PathAdd, req, rec); err != nil {
		return nil, err
	}
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("node agent answered an unusable record: %w", err)
	}
	return rec, nil
}

// Del reports a container's network as torn down.
func (c *Client) Del(ctx context.Context, req DelRequest) error {
	return c.post(ctx, PathDel, req, nil)
}

// Status reports whether the agent answers, and so can serve an ADD: nil if it does.
func (c *Client) Status(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://podsg-agent"+PathStatus, nil)
	if err != nil {
		return err
	}
	return c.do(req, nil)
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://podsg-agent"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, out)
}

// do sends req and decodes a 2xx answer into out (unless nil); other answers become *Error.
func (c *Client) do(req *http.Request, out any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the node agent's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("node agent answered %s: %s", resp.Status, bytes.TrimSpace(data))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the node agent's answer: %w", err)
	}
	return nil
}
