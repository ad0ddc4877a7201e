package ec2

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/sync/errgroup"
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

// chunkReaders is how many filter chunks of one describe are read at once. A chunk's pages
// follow each other (each needs the previous one's NextToken), so a read of thousands of
// trunks' associations in one chunk after another waited for well over a hundred round trips
// in a row; the describe budget still bounds the rate, this only stops the waits queueing.
const chunkReaders = 4

// inChunks reads values filterValues at a time, up to chunkReaders chunks at once, and returns
// what the reads return in the order of values. The first error ends the other reads.
func inChunks[T any](ctx context.Context, values []string, read func(ctx context.Context, chunk []string) ([]T, error)) ([]T, error) {
	chunks := slices.Collect(slices.Chunk(values, filterValues))
	got := make([][]T, len(chunks))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(chunkReaders)
	for i, chunk := range chunks {
		g.Go(func() error {
			var err error
			got[i], err = read(ctx, chunk)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(got...), nil
}
