package state

import (
	"slices"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Idempotency carries a request's ClientToken and a hash of its other
// parameters; a repeated token with the same hash replays the first result.
type Idempotency struct {
	Token      string
	ParamsHash string
}

// replay returns the resources recorded for the token, if any.
func (tx *Tx) replay(action string, idem Idempotency) ([]string, bool, error) {
	if idem.Token == "" {
		return nil, false, nil
	}
	if len(idem.Token) > 64 {
		return nil, false, apierr.InvalidValue("Value (%s) for parameter clientToken is invalid. Length exceeds maximum of 64.", idem.Token)
	}
	rec, ok := tx.m.tokens.get(action + "/" + idem.Token)
	if !ok {
		return nil, false, nil
	}
	if rec.ParamsHash != idem.ParamsHash {
		return nil, false, apierr.New(apierr.CodeIdempotentParameterMismatch,
			"The client token you have provided is associated with a resource that is already deleted or a request with different parameters. Please use a different client token.")
	}
	return slices.Clone(rec.Resources), true, nil
}

func (tx *Tx) remember(action string, idem Idempotency, resources ...string) {
	if idem.Token == "" {
		return
	}
	key := action + "/" + idem.Token
	put(tx, tx.m.tokens, key, &ClientToken{Key: key, ParamsHash: idem.ParamsHash, Resources: resources, CreatedAt: tx.now})
}
