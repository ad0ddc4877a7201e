package controller

import (
	"fmt"
	"math"

	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
)

// EC2Budget is the account's EC2 request budget as EC2 documents it
// (docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html: mutating actions refill 5
// per second up to 50, describes 20 up to 100), and the share of it left to the account's
// other users.
type EC2Budget struct {
	MutatingRate  float64
	MutatingBurst int
	DescribeRate  float64
	DescribeBurst int
	// LeaveShare is the fraction of each bucket podsg-controller never uses, in [0, 1).
	LeaveShare float64
}

// DefaultEC2Budget is EC2's documented default budget, a fifth of it left to other users.
var DefaultEC2Budget = EC2Budget{MutatingRate: 5, MutatingBurst: 50, DescribeRate: 20, DescribeBurst: 100, LeaveShare: 0.2}

// share returns podsg-controller's part of a bucket of the account: rate and burst scaled by
// what it leaves to others, the burst at least one request.
func (b EC2Budget) share(rate float64, burst int) (float64, int, error) {
	if b.LeaveShare < 0 || b.LeaveShare >= 1 || math.IsNaN(b.LeaveShare) {
		return 0, 0, fmt.Errorf("the share of the EC2 budget left to other users must be in [0, 1), got %v", b.LeaveShare)
	}
	if rate <= 0 || burst < 1 {
		return 0, 0, fmt.Errorf("an EC2 budget needs a positive rate and burst, got %v and %d", rate, burst)
	}
	keep := 1 - b.LeaveShare
	return rate * keep, max(1, int(float64(burst)*keep)), nil
}

// Apply sizes the client-side budgets of an EC2 client's options: podsg-controller's share.
func (b EC2Budget) Apply(o cloudec2.Options) (cloudec2.Options, error) {
	var err error
	if o.MutatingQPS, o.MutatingBurst, err = b.share(b.MutatingRate, b.MutatingBurst); err != nil {
		return o, fmt.Errorf("sizing the mutating EC2 budget: %w", err)
	}
	if o.DescribeQPS, o.DescribeBurst, err = b.share(b.DescribeRate, b.DescribeBurst); err != nil {
		return o, fmt.Errorf("sizing the describe EC2 budget: %w", err)
	}
	return o, nil
}
