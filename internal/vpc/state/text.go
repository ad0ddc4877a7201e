package state

import (
	"strings"
	"unicode/utf8"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// groupCharset is what EC2 accepts in a VPC security group's name and
// description, and in a rule's description: a-z, A-Z, 0-9, spaces and
// ._-:/()#,@[]+=&;{}!$*.
const groupCharset = "a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*"

// maxGroupText is the length limit of those (EC2: up to 255 characters).
const maxGroupText = 255

func inGroupCharset(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return r < utf8.RuneSelf && strings.ContainsRune(" ._-:/()#,@[]+=&;{}!$*", r)
}

// checkText accepts any text EC2 can store and give back: valid UTF-8
// holding only characters an XML answer can carry (which excludes most
// control characters). Length limits are the caller's.
func checkText(param, v string) error {
	if !utf8.ValidString(v) {
		return apierr.InvalidValue("Value %q for parameter %s is invalid. It is not valid UTF-8.", v, param)
	}
	for i, r := range v {
		if !xmlChar(r) {
			return apierr.InvalidValue("Value %q for parameter %s is invalid. Character %U at byte %d cannot be represented.", v, param, r, i)
		}
	}
	return nil
}

// xmlChar reports whether r is a Char of XML 1.0.
func xmlChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// checkGroupText checks a security group name or description, or a rule
// description (what names the thing in EC2's messages: "security group
// name", "security group description", "rule description"), with EC2's
// error messages.
func checkGroupText(param, what, v string) error {
	if err := checkText(param, v); err != nil {
		return err
	}
	for i, r := range v {
		if r >= utf8.RuneSelf {
			return apierr.InvalidValue("Value (%s) for parameter %s is invalid. Character sets beyond ASCII are not supported.", v, param)
		}
		if !inGroupCharset(r) {
			return apierr.InvalidValue("Invalid %s. Valid %ss are strings less than %d characters from the following set:  %s (%q at position %d is not).",
				what, lastWord(what), maxGroupText+1, groupCharset, r, i)
		}
	}
	if len(v) > maxGroupText {
		return apierr.InvalidValue("Value (%s) for parameter %s is invalid. Length exceeds the maximum of %d characters.", v, param, maxGroupText)
	}
	return nil
}

func lastWord(s string) string { return s[strings.LastIndexByte(s, ' ')+1:] }
