package server

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Credentials maps access key ids to secret keys.
type Credentials map[string]string

// ParseCredentials reads a credentials file: one "ACCESS_KEY_ID SECRET_KEY"
// pair per line; blank lines and lines starting with # are ignored.
func ParseCredentials(r io.Reader) (Credentials, error) {
	creds := Credentials{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"ACCESS_KEY_ID SECRET_KEY\"", n)
		}
		creds[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading credentials: %w", err)
	}
	if len(creds) == 0 {
		return nil, fmt.Errorf("no credentials in file")
	}
	return creds, nil
}

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDateFmt   = "20060102T150405Z"
	maxSkew      = 15 * time.Minute
)

var errAuth = apierr.Error{Code: apierr.CodeAuthFailure, Message: "AWS was not able to validate the provided access credentials", Status: http.StatusUnauthorized}

type authHeader struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

func parseAuthorization(h string) (authHeader, bool) {
	rest, ok := strings.CutPrefix(h, sigAlgorithm+" ")
	if !ok {
		return authHeader{}, false
	}
	var a authHeader
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			scope := strings.Split(v, "/")
			if len(scope) != 5 || scope[4] != "aws4_request" {
				return authHeader{}, false
			}
			a.accessKey, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	return a, a.accessKey != "" && a.signature != "" && len(a.signedHeaders) > 0
}

// verifySigV4 checks an Authorization-header SigV4 signature over the
// request and its already-read body.
func verifySigV4(r *http.Request, body []byte, creds Credentials, now time.Time) error {
	a, ok := parseAuthorization(r.Header.Get("Authorization"))
	if !ok {
		e := errAuth
		return &e
	}
	secret, ok := creds[a.accessKey]
	if !ok {
		e := errAuth
		return &e
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFmt, amzDate)
	if err != nil || !strings.HasPrefix(amzDate, a.date) {
		e := errAuth
		return &e
	}
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return apierr.New("RequestExpired", "Request has expired. Timestamp date is %s.", amzDate)
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if err := checkContentSHA256(r, payload); err != nil {
		return err
	}
	scope := strings.Join([]string{a.date, a.region, a.service, "aws4_request"}, "/")
	creq := canonicalRequest(r, payload, a.signedHeaders)
	sum = sha256.Sum256([]byte(creq))
	toSign := strings.Join([]string{sigAlgorithm, amzDate, scope, hex.EncodeToString(sum[:])}, "\n")
	key := hmacSHA256([]byte("AWS4"+secret), a.date)
	for _, s := range []string{a.region, a.service, "aws4_request"} {
		key = hmacSHA256(key, s)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return &apierr.Error{Code: apierr.CodeSignatureDoesNotMatch, Status: http.StatusForbidden,
			Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// checkContentSHA256 rejects a request whose X-Amz-Content-Sha256 header
// disagrees with the hash of the body it carries. The signature covers the
// body through its hash, which the server computes itself: trusting the
// header instead would let anyone replay a captured signature with another
// body and the original body's hash in an (unsigned) header. The error is
// the one S3, the service that uses this header, answers.
func checkContentSHA256(r *http.Request, payload string) error {
	vals := r.Header.Values("X-Amz-Content-Sha256")
	if len(vals) == 0 {
		return nil
	}
	if len(vals) > 1 || !strings.EqualFold(vals[0], payload) {
		return apierr.New(CodeContentSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return nil
}

// CodeContentSHA256Mismatch is the error of a request whose
// X-Amz-Content-Sha256 header is not the hash of its body.
const CodeContentSHA256Mismatch = "XAmzContentSHA256Mismatch"

// canonicalRequest is SigV4's canonical request; payload is the hex SHA-256
// of the body as received.
func canonicalRequest(r *http.Request, payload string, signed []string) string {
	var headers strings.Builder
	for _, h := range signed {
		headers.WriteString(h + ":" + canonicalHeaderValue(r, h) + "\n")
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	return strings.Join([]string{
		r.Method, uriEncode(path, false), canonicalQuery(r.URL.Query()),
		headers.String(), strings.Join(signed, ";"), payload,
	}, "\n")
}

func canonicalHeaderValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		return fmt.Sprint(r.ContentLength)
	}
	vals := r.Header.Values(name)
	for i, v := range vals {
		vals[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(vals, ",")
}

func canonicalQuery(q url.Values) string {
	var parts []string
	for k, vs := range q {
		for _, v := range vs {
			parts = append(parts, uriEncode(k, true)+"="+uriEncode(v, true))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "&")
}

// uriEncode is SigV4's encoding: everything but unreserved characters is
// percent-encoded; '/' is kept in paths.
func uriEncode(s string, encodeSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
