package config

import (
	"net/url"
	"regexp"
	"strings"
)

var (
	// user:password@tcp(host:3306)/db, the go-sql-driver/mysql DSN form.
	dsnUserPass = regexp.MustCompile(`^([^:@/]*):(.*)@([a-z0-9]*\(|/)`)
	// password=... in libpq key/value strings and in URL queries.
	kvPassword = regexp.MustCompile(`(?i)\b(\w*(?:password|passwd|pwd|secret|token)|pass)(\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]+)`)
)

// Redact hides the passwords in a connection string so it can be logged:
// URLs (postgres://u:p@h/db, http://u:p@h), go-sql-driver DSNs
// (u:p@tcp(h:3306)/db) and key/value strings (host=h password=p), including
// password-like query parameters.
func Redact(s string) string {
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), redacted)
			}
			out := u.String()
			// url.String escapes the placeholder's neighbours correctly but
			// query values still need hiding.
			return kvPassword.ReplaceAllString(out, "${1}${2}"+redacted)
		}
		// An unparsable URL may still carry user:password@.
		if i := strings.Index(s, "://"); i >= 0 {
			rest := s[i+3:]
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				if colon := strings.Index(rest[:at], ":"); colon >= 0 {
					rest = rest[:colon+1] + redacted + rest[at:]
				}
			}
			return kvPassword.ReplaceAllString(s[:i+3]+rest, "${1}${2}"+redacted)
		}
	}
	if m := dsnUserPass.FindStringSubmatchIndex(s); m != nil {
		s = s[:m[4]] + redacted + s[m[5]:]
	}
	return kvPassword.ReplaceAllString(s, "${1}${2}"+redacted)
}
