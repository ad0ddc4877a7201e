package imds

import (
	"container/heap"
	"time"
)

// maxTokens bounds the live IMDSv2 tokens of one instance, so that a
// process looping on PUT /latest/api/token cannot grow the server's memory
// without end (a token lives up to six hours). A well-behaved client holds
// one token at a time; thousands leave room for every process of a busy
// node. EC2 documents no such number; it throttles the requests instead.
const maxTokens = 5000

// tokenStore holds an instance's live tokens: a map to check a token and a
// min-heap by expiry to drop the expired ones, so that issuing a token
// costs O(log n) however many are live, instead of a scan of all of them.
// It is not safe for concurrent use.
type tokenStore struct {
	max   int
	byTok map[string]time.Time
	byExp expiryHeap
}

type issued struct {
	tok string
	exp time.Time
}

func newTokenStore(limit int) *tokenStore {
	return &tokenStore{max: limit, byTok: map[string]time.Time{}}
}

// add records tok, valid until exp, after dropping the tokens expired at
// now. When max tokens are still live, the one that expires first goes:
// it is worth the least to whoever holds it, who gets a 401 and asks for a
// new token, as after an expiry.
func (s *tokenStore) add(tok string, now, exp time.Time) {
	s.expire(now)
	for len(s.byExp) >= s.max {
		s.drop(heap.Pop(&s.byExp).(issued))
	}
	s.byTok[tok] = exp
	heap.Push(&s.byExp, issued{tok, exp})
}

// valid reports whether tok was issued and has not expired at now.
func (s *tokenStore) valid(tok string, now time.Time) bool {
	exp, ok := s.byTok[tok]
	return ok && now.Before(exp)
}

// expire drops the tokens whose expiry is not after now.
func (s *tokenStore) expire(now time.Time) {
	for len(s.byExp) > 0 && !now.Before(s.byExp[0].exp) {
		s.drop(heap.Pop(&s.byExp).(issued))
	}
}

func (s *tokenStore) drop(t issued) { delete(s.byTok, t.tok) }

func (s *tokenStore) len() int { return len(s.byTok) }

// expiryHeap is a container/heap of issued tokens, soonest expiry first.
type expiryHeap []issued

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp.Before(h[j].exp) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(issued)) }
func (h *expiryHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = issued{} // let the token's string go
	*h = old[:len(old)-1]
	return t
}
