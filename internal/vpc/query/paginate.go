package query

import (
	"encoding/base64"
	"sort"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Page describes MaxResults/NextToken for a describe call.
type Page struct {
	// MaxResults is 0 when the caller did not ask for pagination.
	MaxResults int
	// After is the sort key the previous page ended with ("" for the first).
	After string
}

// ParsePage decodes MaxResults (bounded to [lo, hi]) and NextToken.
func (p Params) ParsePage(lo, hi int64) (Page, error) {
	var pg Page
	if p.Has("MaxResults") {
		n, err := p.IntIn("MaxResults", 0, lo, hi)
		if err != nil {
			return Page{}, err
		}
		pg.MaxResults = int(n)
	}
	if tok := p.String("NextToken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) == 0 {
			return Page{}, apierr.New(apierr.CodeInvalidPaginationToken, "The specified pagination token is not valid or is expired.")
		}
		pg.After = string(raw)
	}
	return pg, nil
}

// Paginate cuts one page out of items, which must be sorted by key. It
// returns the page and the token for the next one ("" on the last page).
func Paginate[T any](items []T, key func(T) string, pg Page) ([]T, string) {
	start := 0
	if pg.After != "" {
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > pg.After })
	}
	items = items[start:]
	if pg.MaxResults <= 0 || len(items) <= pg.MaxResults {
		return items, ""
	}
	page := items[:pg.MaxResults]
	return page, base64.RawURLEncoding.EncodeToString([]byte(key(page[len(page)-1])))
}
