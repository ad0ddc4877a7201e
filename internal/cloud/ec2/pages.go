package ec2

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// pager is an SDK paginator of one describe action.
type pager[O any] interface {
	HasMorePages() bool
	NextPage(ctx context.Context, optFns ...func(*ec2.Options)) (O, error)
}

// allPages reads every page of p, each through call (the describe limiter, the metrics, the
// error classification), and returns what items takes from each page, in order.
func allPages[O, T any](ctx context.Context, c *Client, action string, p pager[O], items func(O) []T) ([]T, error) {
	var out []T
	for p.HasMorePages() {
		page, err := call(ctx, c, action, false, func(ctx context.Context) (O, error) { return p.NextPage(ctx) })
		if err != nil {
			return nil, err
		}
		out = append(out, items(page)...)
	}
	return out, nil
}
