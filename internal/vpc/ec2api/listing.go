package ec2api

import (
	"slices"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// listing describes how a Describe* call selects and pages one resource type.
type listing[T any] struct {
	// idParam is the X.N parameter naming explicit ids ("" if none) and
	// idPrefix their prefix, for malformed/not-found errors.
	idParam, idPrefix string
	get               func(id string) (T, bool)
	all               func() []T
	key               func(T) string
	fields            func(T) query.Fields
	// sample lets filter names be validated even with nothing to match.
	sample T
	// minPage/maxPage bound MaxResults.
	minPage, maxPage int64
	// defaultPage is the page size without MaxResults (0: everything in one answer).
	defaultPage int
}

// run returns one page of the selected, filtered resources.
func (l listing[T]) run(p query.Params) ([]T, string, error) {
	filters, err := p.Filters()
	if err != nil {
		return nil, "", err
	}
	if err := query.ValidateNames(filters, l.fields(l.sample)); err != nil {
		return nil, "", err
	}
	page, err := p.ParsePage(l.minPage, l.maxPage)
	if err != nil {
		return nil, "", err
	}
	items, err := l.selected(p)
	if err != nil {
		return nil, "", err
	}
	if len(items) > 0 && page.MaxResults > 0 && l.idParam != "" && len(p.List(l.idParam)) > 0 {
		return nil, "", apierr.Combination("The parameter %s cannot be used with the parameter maxResults", l.idParam)
	}
	if page.MaxResults == 0 {
		page.MaxResults = l.defaultPage
	}
	matched := items
	if len(filters) > 0 {
		matched = nil
	}
	for _, it := range items {
		if len(filters) == 0 {
			break
		}
		ok, err := query.Match(filters, l.fields(it))
		if err != nil {
			return nil, "", err
		}
		if ok {
			matched = append(matched, it)
		}
	}
	out, next := query.Paginate(matched, l.key, page)
	return out, next, nil
}

func (l listing[T]) selected(p query.Params) ([]T, error) {
	if l.idParam == "" {
		return l.all(), nil
	}
	ids := p.List(l.idParam)
	if len(ids) == 0 {
		return l.all(), nil
	}
	var out []T
	seen := map[string]bool{}
	for _, id := range ids {
		if err := state.CheckID(l.idPrefix, id); err != nil {
			return nil, err
		}
		it, ok := l.get(id)
		if !ok {
			return nil, state.NotFound(l.idPrefix, id)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, it)
		}
	}
	sortByKey(out, l.key)
	return out, nil
}

func sortByKey[T any](items []T, key func(T) string) {
	slices.SortFunc(items, func(a, b T) int {
		ka, kb := key(a), key(b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
}

// one returns a filter value list of a single string.
func one(s string) []string { return []string{s} }

// fieldMap builds query.Fields from a name → values map plus tag filters.
func fieldMap(tags state.Tags, m map[string][]string) query.Fields {
	return func(name string) ([]string, bool) {
		if v, ok := m[name]; ok {
			return v, true
		}
		return query.TagFields(tags, name)
	}
}
