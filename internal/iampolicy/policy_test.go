package iampolicy

import (
	"strings"
	"testing"
)

func TestParseRejects(t *testing.T) {
	cases := []struct {
		name, doc string
		kind      Kind
		want      string
	}{
		{"not JSON", `{"Version":`, Identity, "Syntax errors in policy."},
		{"trailing data", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}} {}`, Identity, "Syntax errors in policy."},
		{"unknown version", `{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, Identity, "legacy parsing"},
		{"unknown element", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Actions":"x"}}`, Identity, "Syntax errors"},
		{"no statement", `{"Version":"2012-10-17"}`, Identity, "Syntax errors"},
		{"empty statement list", `{"Version":"2012-10-17","Statement":[]}`, Identity, "Syntax errors"},
		{"bad effect", `{"Statement":{"Effect":"Permit","Action":"*","Resource":"*"}}`, Identity, "Invalid effect"},
		{"no effect", `{"Statement":{"Action":"*","Resource":"*"}}`, Identity, "Missing required field Effect"},
		{"no action", `{"Statement":{"Effect":"Allow","Resource":"*"}}`, Identity, "Missing required field Action"},
		{"action and NotAction", `{"Statement":{"Effect":"Allow","Action":"s3:*","NotAction":"iam:*","Resource":"*"}}`, Identity, "Syntax errors"},
		{"action without vendor", `{"Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}`, Identity, "prefaced by a vendor"},
		{"wildcard vendor", `{"Statement":{"Effect":"Allow","Action":"*:Get","Resource":"*"}}`, Identity, "prefaced by a vendor"},
		{"identity without resource", `{"Statement":{"Effect":"Allow","Action":"s3:*"}}`, Identity, "Missing required field Resource"},
		{"identity with principal", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}`, Identity, "should not specify a principal"},
		{"trust with resource", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}}`, Trust, "prohibited field Resource"},
		{"trust without principal", `{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}`, Trust, "Missing required field Principal"},
		{"principal type", `{"Statement":{"Effect":"Allow","Principal":{"User":"x"},"Action":"sts:AssumeRole"}}`, Trust, "Invalid principal"},
		{"principal partial wildcard", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/*"},"Action":"sts:AssumeRole"}}`, Trust, "Invalid principal"},
		{"unknown operator", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringSortOf":{"aws:x":"y"}}}}`, Identity, "Invalid Condition type"},
		{"Null with IfExists", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NullIfExists":{"aws:x":"true"}}}}`, Identity, "Invalid Condition type"},
		{"bad number", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}}}`, Identity, "Invalid value"},
		{"bad date", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}}`, Identity, "Invalid value"},
		{"bad bool", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}}`, Identity, "Invalid value"},
		{"bad CIDR", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}}`, Identity, "Invalid value"},
		{"condition key without vendor", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"username":"x"}}}}`, Identity, "prefaced by a vendor"},
		{"condition value object", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:x":{"a":1}}}}}`, Identity, "Syntax errors"},
		{"resource not a string", `{"Statement":{"Effect":"Allow","Action":"*","Resource":5}}`, Identity, "Syntax errors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.doc, c.kind)
			if err == nil || !IsMalformed(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse = %v, want a MalformedError containing %q", err, c.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	p, err := Parse(`{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"1","Effect":"Allow","Action":["s3:Get*"],"Resource":"*",
		"Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"s3:max-keys":10}}}]}`, Identity)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Statements) != 1 || len(p.Statements[0].Conditions) != 2 {
		t.Fatalf("statements = %+v", p.Statements)
	}
	// JSON booleans and numbers read as their text.
	req := &Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k",
		Context: NewContext(map[string][]string{"aws:SecureTransport": {"true"}, "s3:max-keys": {"9"}})}
	if d := p.Evaluate(req); d != Allowed {
		t.Fatalf("Evaluate = %v", d)
	}
}

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pat, s string
		arn    bool
		want   bool
	}{
		{"*", "", false, true},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"a*", "a:b:c", false, true},
		// ARN mode: a * inside a segment stays in it, one ending a segment spans.
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b/x:y", true, true},
		{"arn:aws:ec2:*:111122223333:instance/i-1", "arn:aws:ec2:us-east-1:111122223333:instance/i-1", true, true},
		{"arn:aws:iam::a*b:role/x", "arn:aws:iam::a:x:b:role/x", true, false},
		{"arn:aws:iam::a*b:role/x", "arn:aws:iam::axxb:role/x", true, true},
		{"arn:aws:rds-db:*:*:dbuser:*/*", "arn:aws:rds-db:us-west-2:111122223333:dbuser:db-X/u", true, true},
		// Many wildcards stay cheap.
		{strings.Repeat("*a", 40) + "b", strings.Repeat("a", 200), false, false},
	}
	for _, c := range cases {
		p, _ := compile(c.pat, true, nil, c.arn)
		if got := p.match(c.s, false); got != c.want {
			t.Errorf("%q ~ %q = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}
