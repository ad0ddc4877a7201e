package iampolicy

import (
	"strings"
)

// A pattern is a policy value compiled for matching: literal runs and the
// wildcards * and ?. Text that a policy variable put there is literal, so a
// user name holding "*" matches only itself.
type pattern []token

type tokenKind uint8

const (
	literal tokenKind = iota
	star
	qmark
)

type token struct {
	kind tokenKind
	text string
	// spansColons: a * that ends an ARN segment (followed by ':' or the end)
	// may match across colons; one inside a segment may not. Set only in
	// ARN mode.
	spansColons bool
}

// compile turns s into a pattern. With wildcards off, * and ? are literal.
// With vars, ${…} is substituted from ctx; ok is false if a variable has
// no value and no default, in which case the value matches nothing.
func compile(s string, wildcards bool, vars *Context, arnMode bool) (pattern, bool) {
	var p pattern
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p = append(p, token{kind: literal, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case vars != nil && strings.HasPrefix(s[i:], "${") && strings.IndexByte(s[i:], '}') > 0:
			end := strings.IndexByte(s[i:], '}')
			val, ok := vars.variable(s[i+2 : i+end])
			if !ok {
				return nil, false
			}
			lit.WriteString(val)
			i += end
		case wildcards && c == '*':
			flush()
			spans := arnMode && (i+1 == len(s) || s[i+1] == ':')
			p = append(p, token{kind: star, spansColons: spans || !arnMode})
		case wildcards && c == '?':
			flush()
			p = append(p, token{kind: qmark})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return p, true
}

// match reports whether the whole of s matches p; fold compares letters
// case-insensitively. It is a dynamic programme over (pattern unit, input
// rune), so a policy with many wildcards costs O(len(p)·len(s)), never an
// exponential backtrack.
func (p pattern) match(s string, fold bool) bool {
	type unit struct {
		kind  tokenKind
		r     rune
		spans bool
	}
	var units []unit
	for _, t := range p {
		if t.kind != literal {
			units = append(units, unit{kind: t.kind, spans: t.spansColons})
			continue
		}
		for _, r := range t.text {
			units = append(units, unit{kind: literal, r: r})
		}
	}
	in := []rune(s)
	// cur[j]: units[:i] match in[:j].
	cur := make([]bool, len(in)+1)
	cur[0] = true
	next := make([]bool, len(in)+1)
	for _, u := range units {
		clear(next)
		for j := 0; j <= len(in); j++ {
			switch u.kind {
			case star:
				// Empty, or extend the star by one rune (colons only if it may span them).
				next[j] = cur[j] || (j > 0 && next[j-1] && (u.spans || in[j-1] != ':'))
			case qmark:
				next[j] = j > 0 && cur[j-1]
			default:
				next[j] = j > 0 && cur[j-1] && runeEq(u.r, in[j-1], fold)
			}
		}
		cur, next = next, cur
	}
	return cur[len(in)]
}

func runeEq(a, b rune, fold bool) bool {
	if a == b {
		return true
	}
	return fold && strings.EqualFold(string(a), string(b))
}

// matchAction matches an action against a policy's action pattern,
// case-insensitively ("ec2:Describe*" matches "EC2:describeInstances").
func matchAction(pat, action string) bool {
	p, _ := compile(pat, true, nil, false)
	return p.match(action, true)
}

// matchResource matches a resource ARN against a Resource value: "*"
// matches everything; otherwise wildcards stay within ARN segments except a
// * that ends one. Variables are substituted when vars is non-nil.
func matchResource(pat, resource string, vars *Context) bool {
	if pat == "*" {
		return true
	}
	p, ok := compile(pat, true, vars, true)
	return ok && p.match(resource, false)
}
