package iampolicy

import (
	"strings"
)

// Context holds a request's condition keys and their values. Keys are
// case-insensitive, as in IAM; a key with several values is multivalued
// (aws:TagKeys), one the set operators ForAnyValue/ForAllValues test.
type Context struct {
	keys map[string][]string
}

// NewContext returns a context holding kv (key → values).
func NewContext(kv map[string][]string) *Context {
	c := &Context{keys: map[string][]string{}}
	for k, v := range kv {
		c.Set(k, v...)
	}
	return c
}

// Set gives key its values (none removes it).
func (c *Context) Set(key string, values ...string) {
	if c.keys == nil {
		c.keys = map[string][]string{}
	}
	if len(values) == 0 {
		delete(c.keys, strings.ToLower(key))
		return
	}
	c.keys[strings.ToLower(key)] = values
}

// Get returns key's values and whether it is present.
func (c *Context) Get(key string) ([]string, bool) {
	if c == nil {
		return nil, false
	}
	v, ok := c.keys[strings.ToLower(key)]
	return v, ok
}

// variable resolves the inside of ${…}: a key, optionally with a default
// ("aws:username, 'anonymous'"), or one of the escapes *, ?, $. Only
// single-valued keys substitute.
func (c *Context) variable(expr string) (string, bool) {
	switch expr {
	case "*", "?", "$":
		return expr, true
	}
	key, def, hasDef := strings.Cut(expr, ",")
	key = strings.TrimSpace(key)
	if v, ok := c.Get(key); ok && len(v) == 1 {
		return v[0], true
	}
	if hasDef {
		def = strings.TrimSpace(def)
		if len(def) >= 2 && def[0] == '\'' && def[len(def)-1] == '\'' {
			return def[1 : len(def)-1], true
		}
	}
	return "", false
}
