package netpol

import (
	"fmt"
	"slices"
	"strings"
)

// calicoSelector is a compiled Calico selector expression: it matches a set of labels.
//
// The grammar (Calico's, as its selector reference documents it):
//
//	expr    = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = "!" unary | "(" expr ")" | "all()" | "global()" | "has(" key ")" | key op
//	op      = "==" str | "!=" str | "in" set | "not" "in" set
//	        | "contains" str | "starts" "with" str | "ends" "with" str
//	set     = "{" [ str { "," str } ] "}"
//	str     = '…' | "…"
//
// An empty selector is all(). `k != "v"` and `k not in {…}` also match labels without k, as
// in Calico.
type calicoSelector interface {
	matches(l map[string]string) bool
}

type (
	selAll    struct{}
	selGlobal struct{}
	selHas    struct{ key string }
	selNot    struct{ x calicoSelector }
	selAnd    struct{ a, b calicoSelector }
	selOr     struct{ a, b calicoSelector }
	selCmp    struct {
		key, op string
		values  []string
	}
)

func (selAll) matches(map[string]string) bool { return true }

// global() matches non-namespaced resources (host endpoints, global network sets); podsg
// judges pods only, so it matches nothing.
func (selGlobal) matches(map[string]string) bool  { return false }
func (s selHas) matches(l map[string]string) bool { _, ok := l[s.key]; return ok }
func (s selNot) matches(l map[string]string) bool { return !s.x.matches(l) }
func (s selAnd) matches(l map[string]string) bool { return s.a.matches(l) && s.b.matches(l) }
func (s selOr) matches(l map[string]string) bool  { return s.a.matches(l) || s.b.matches(l) }
func (s selCmp) matches(l map[string]string) bool {
	v, ok := l[s.key]
	switch s.op {
	case "==":
		return ok && v == s.values[0]
	case "!=":
		return !ok || v != s.values[0]
	case "in":
		return ok && slices.Contains(s.values, v)
	case "not in":
		return !ok || !slices.Contains(s.values, v)
	case "contains":
		return ok && strings.Contains(v, s.values[0])
	case "starts with":
		return ok && strings.HasPrefix(v, s.values[0])
	case "ends with":
		return ok && strings.HasSuffix(v, s.values[0])
	}
	return false
}

// parseCalicoSelector compiles a selector; the error says where and what was expected.
func parseCalicoSelector(s string) (calicoSelector, error) {
	p := &selParser{in: s}
	p.skip()
	if p.pos == len(p.in) {
		return selAll{}, nil
	}
	x, err := p.expr()
	if err != nil {
		return nil, err
	}
	p.skip()
	if p.pos != len(p.in) {
		return nil, p.errorf("unexpected %q", p.rest())
	}
	return x, nil
}

type selParser struct {
	in  string
	pos int
}

func (p *selParser) errorf(format string, args ...any) error {
	return fmt.Errorf("selector %q: at offset %d: %s", p.in, p.pos, fmt.Sprintf(format, args...))
}

func (p *selParser) rest() string {
	r := p.in[p.pos:]
	if len(r) > 20 {
		r = r[:20] + "…"
	}
	return r
}

func (p *selParser) skip() {
	for p.pos < len(p.in) && strings.ContainsRune(" \t\n\r", rune(p.in[p.pos])) {
		p.pos++
	}
}

// accept consumes tok if it comes next (after blanks).
func (p *selParser) accept(tok string) bool {
	p.skip()
	if strings.HasPrefix(p.in[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

// acceptWord consumes a keyword when it comes next as a whole word.
func (p *selParser) acceptWord(w string) bool {
	p.skip()
	save := p.pos
	if p.word() == w {
		return true
	}
	p.pos = save
	return false
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_./-", c) >= 0
}

func (p *selParser) word() string {
	start := p.pos
	for p.pos < len(p.in) && isKeyChar(p.in[p.pos]) {
		p.pos++
	}
	return p.in[start:p.pos]
}

func (p *selParser) expr() (calicoSelector, error) {
	x, err := p.and()
	for err == nil && p.accept("||") {
		var y calicoSelector
		if y, err = p.and(); err == nil {
			x = selOr{x, y}
		}
	}
	return x, err
}

func (p *selParser) and() (calicoSelector, error) {
	x, err := p.unary()
	for err == nil && p.accept("&&") {
		var y calicoSelector
		if y, err = p.unary(); err == nil {
			x = selAnd{x, y}
		}
	}
	return x, err
}

func (p *selParser) unary() (calicoSelector, error) {
	switch {
	case p.accept("!"):
		x, err := p.unary()
		return selNot{x}, err
	case p.accept("("):
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if !p.accept(")") {
			return nil, p.errorf("expected ) to close the parenthesis")
		}
		return x, nil
	case p.accept("all()"):
		return selAll{}, nil
	case p.accept("global()"):
		return selGlobal{}, nil
	case p.accept("has("):
		p.skip()
		k := p.word()
		if k == "" {
			return nil, p.errorf("has( needs a label key")
		}
		if !p.accept(")") {
			return nil, p.errorf("expected ) after has(%s", k)
		}
		return selHas{k}, nil
	}
	p.skip()
	if p.pos == len(p.in) {
		return nil, p.errorf("expected a label expression, got the end")
	}
	k := p.word()
	if k == "" {
		return nil, p.errorf("expected a label key, all(), has(…), ! or (, got %q", p.rest())
	}
	return p.comparison(k)
}

func (p *selParser) comparison(k string) (calicoSelector, error) {
	var op string
	switch {
	case p.accept("=="):
		op = "=="
	case p.accept("!="):
		op = "!="
	case p.acceptWord("in"):
		op = "in"
	case p.acceptWord("not"):
		if !p.acceptWord("in") {
			return nil, p.errorf("expected in after %s not", k)
		}
		op = "not in"
	case p.acceptWord("contains"):
		op = "contains"
	case p.acceptWord("starts"):
		if !p.acceptWord("with") {
			return nil, p.errorf("expected with after %s starts", k)
		}
		op = "starts with"
	case p.acceptWord("ends"):
		if !p.acceptWord("with") {
			return nil, p.errorf("expected with after %s ends", k)
		}
		op = "ends with"
	default:
		return nil, p.errorf("expected ==, !=, in, not in, contains, starts with or ends with after label %s", k)
	}
	if op == "in" || op == "not in" {
		vs, err := p.set()
		return selCmp{key: k, op: op, values: vs}, err
	}
	v, err := p.str()
	return selCmp{key: k, op: op, values: []string{v}}, err
}

func (p *selParser) set() ([]string, error) {
	if !p.accept("{") {
		return nil, p.errorf("expected { to start a set of values")
	}
	var vs []string
	if p.accept("}") {
		return vs, nil
	}
	for {
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
		if p.accept("}") {
			return vs, nil
		}
		if !p.accept(",") {
			return nil, p.errorf("expected , or } in a set of values")
		}
	}
}

func (p *selParser) str() (string, error) {
	p.skip()
	if p.pos == len(p.in) || (p.in[p.pos] != '"' && p.in[p.pos] != '\'') {
		return "", p.errorf("expected a quoted value")
	}
	q := p.in[p.pos]
	end := strings.IndexByte(p.in[p.pos+1:], q)
	if end < 0 {
		return "", p.errorf("unterminated value: no closing %c", q)
	}
	v := p.in[p.pos+1 : p.pos+1+end]
	p.pos += end + 2
	return v, nil
}

// MatchCalicoSelector parses a Calico selector and matches it against labels (for tools and
// tests: layers compile their selectors once).
func MatchCalicoSelector(selector string, labels map[string]string) (bool, error) {
	s, err := parseCalicoSelector(selector)
	if err != nil {
		return false, err
	}
	return s.matches(labels), nil
}
