package cloud

import "context"

// Purpose says what an EC2 call is for. It travels in the call's context, so that one budget
// of EC2 requests can serve pods before warm pools before cleanup, and metrics can count calls
// by what they were spent on.
type Purpose string

// Purposes of podsg-controller's EC2 calls, most urgent first.
const (
	PurposePod     Purpose = "pod"     // a pod waits for its branch ENI
	PurposeNode    Purpose = "node"    // a node's trunk: every pod of the node waits for it
	PurposeUpdate  Purpose = "update"  // a running pod's groups follow its policy
	PurposeWarm    Purpose = "warm"    // branches made ahead of pods
	PurposeCleanup Purpose = "cleanup" // freeing what no pod needs any more
	// PurposeOther is a call whose context names none (podsg-agent, the CLI): as urgent as
	// a pod's, so that a caller that knows nothing of purposes is never held back.
	PurposeOther Purpose = "other"
)

type purposeKey struct{}

// WithPurpose returns ctx carrying p.
func WithPurpose(ctx context.Context, p Purpose) context.Context {
	return context.WithValue(ctx, purposeKey{}, p)
}

// PurposeOf returns the purpose ctx carries, PurposeOther if none.
func PurposeOf(ctx context.Context) Purpose {
	if p, ok := ctx.Value(purposeKey{}).(Purpose); ok {
		return p
	}
	return PurposeOther
}
