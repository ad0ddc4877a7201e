package ec2api

import (
	"slices"
	"sort"

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
	// ids, for a resource whose key is its id, lists every id in order without
	// materialising the items: a page then reads only the ids it needs from where the
	// previous page ended. narrow, if set (it needs ids), answers from an index: the ids that
	// may match filters, in any order, and true; or false when no filter can be answered from
	// an index. Every filter is still matched against the items of what it returns.
	ids    func() []string
	narrow func(filters []query.Filter) ([]string, bool)
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
	explicit := l.idParam != "" && len(p.List(l.idParam)) > 0
	if l.ids != nil && !explicit {
		return l.scan(filters, page)
	}
	items, err := l.selected(p)
	if err != nil {
		return nil, "", err
	}
	if len(items) > 0 && page.MaxResults > 0 && explicit {
		return nil, "", apierr.Combination("The parameter %s cannot be used with the parameter maxResults", l.idParam)
	}
	if page.MaxResults == 0 {
		page.MaxResults = l.defaultPage
	}
	matched, err := l.filter(items, filters)
	if err != nil {
		return nil, "", err
	}
	out, next := query.Paginate(matched, l.key, page)
	return out, next, nil
}

// filter returns the items every filter matches.
func (l listing[T]) filter(items []T, filters []query.Filter) ([]T, error) {
	if len(filters) == 0 {
		return items, nil
	}
	var matched []T
	for _, it := range items {
		ok, err := query.Match(filters, l.fields(it))
		if err != nil {
			return nil, err
		}
		if ok {
			matched = append(matched, it)
		}
	}
	return matched, nil
}

// scan pages through l.ids (or what narrow returns): it starts where the previous page ended
// and stops one match past this page, so paging through N items costs N, not the
// N²/MaxResults of filtering everything for every page.
func (l listing[T]) scan(filters []query.Filter, page query.Page) ([]T, string, error) {
	all := l.ids()
	ids, narrowed := []string(nil), false
	if len(filters) > 0 && l.narrow != nil {
		ids, narrowed = l.narrow(filters)
	}
	// An index pays when it is selective: its ids must be sorted for every page, which for
	// most of the table costs more than scanning the table's own sorted ids (paging through
	// 100,000 ENIs by a cluster tag all of them carry spent half its time sorting).
	if !narrowed || len(ids)*4 > len(all) {
		ids = all
	} else {
		ids = slices.DeleteFunc(ids, func(id string) bool { return id <= page.After })
		slices.Sort(ids)
	}
	if page.After != "" {
		ids = ids[sort.SearchStrings(ids, page.After+"\x00"):]
		page.After = ""
	}
	if page.MaxResults == 0 {
		page.MaxResults = l.defaultPage
	}
	var matched []T
	for _, id := range ids {
		if page.MaxResults > 0 && len(matched) > page.MaxResults {
			break
		}
		it, ok := l.get(id)
		if !ok {
			continue
		}
		if len(filters) > 0 {
			ok, err := query.Match(filters, l.fields(it))
			if err != nil {
				return nil, "", err
			}
			if !ok {
				continue
			}
		}
		matched = append(matched, it)
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

// narrowBy is a listing's narrow built from an index: lookup answers one literal value of a
// filter name with how many ids the index holds for it and how to list them, or false for a
// name it has no index for. Of the filters it can answer (every value literal: a wildcard
// needs a scan), the one allowing the fewest ids wins; only its ids are listed and
// deduplicated, in no order.
func narrowBy(filters []query.Filter, lookup func(name, value string) (int, func() []string, bool)) ([]string, bool) {
	var best []func() []string
	bestN, found := 0, false
	for _, f := range filters {
		if len(f.Values) == 0 || slices.ContainsFunc(f.Values, func(v string) bool { return !query.Literal(v) }) {
			continue
		}
		var lists []func() []string
		n, indexed := 0, true
		for _, v := range f.Values {
			count, list, ok := lookup(f.Name, v)
			if !ok {
				indexed = false
				break
			}
			n += count
			lists = append(lists, list)
		}
		if indexed && (!found || n < bestN) {
			best, bestN, found = lists, n, true
		}
	}
	if len(best) == 1 {
		return best[0](), found
	}
	seen := make(map[string]bool, bestN)
	ids := make([]string, 0, bestN)
	for _, list := range best {
		for _, id := range list() {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	return ids, found
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
