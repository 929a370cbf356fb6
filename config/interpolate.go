package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// connectorPlaceholder matches ${topic}-style references that connectors
	// expand themselves, such as ${source.schema}: dotted names only.
	connectorPlaceholder = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)+$`)
)

// interpolate expands references in one YAML scalar value:
//
//	${VAR}            the environment variable VAR; unset is an error
//	${VAR:-default}   VAR, or default when VAR is unset or empty; the
//	                  default may itself hold references, ${A:-${B}/x},
//	                  expanded only when it is used (as a shell does)
//	${file:PATH}      the content of PATH (relative to the config file's
//	                  folder), trailing newlines trimmed: for secrets
//	$${               a literal "${"
//	${source.table}   left as is: dotted names are connector placeholders
//	                  (table_name_format), never environment variables
//
// Any other "$" is kept as is, so regular expressions such as "^a$" need no
// escaping. It works on parsed scalars, not on the raw text, so a value can
// never inject YAML syntax and line numbers never move.
func interpolate(s, baseDir string) (string, error) {
	return interpolateDepth(s, baseDir, 0)
}

// maxRefDepth bounds nested defaults, so a hostile value cannot recurse
// without end.
const maxRefDepth = 16

func interpolateDepth(s, baseDir string, depth int) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	if depth > maxRefDepth {
		return "", fmt.Errorf("references nested more than %d deep", maxRefDepth)
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			// "$${" is the escape for a literal "${".
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := closingBrace(s[i+2:])
		if end < 0 {
			return "", fmt.Errorf("unterminated %q: missing '}' (write $${ for a literal ${)", s[i:])
		}
		ref := s[i+2 : i+2+end]
		if connectorPlaceholder.MatchString(ref) {
			// ${source.table} and the like belong to the connector (e.g.
			// table_name_format); no environment variable has a dot.
			b.WriteString(s[i : i+2+end+1])
			s = s[i+2+end+1:]
			continue
		}
		v, err := resolveRef(ref, baseDir, depth)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		s = s[i+2+end+1:]
	}
}

// closingBrace returns the index in s (the text after a "${") of the "}"
// that closes it, or -1. Nested "${" count, and so does the escape "$${"
// (a literal "${b}" in a default is balanced too).
// Taking the first "}" instead turned ${A:-${B}/x} into the default "${B"
// followed by a literal "/x}" (issue 11).
func closingBrace(s string) int {
	depth := 1
	for j := 0; j < len(s); j++ {
		switch {
		case strings.HasPrefix(s[j:], "$${"):
			depth++
			j += 2
		case strings.HasPrefix(s[j:], "${"):
			depth++
			j++
		case s[j] == '}':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

func resolveRef(ref, baseDir string, depth int) (string, error) {
	if path, ok := strings.CutPrefix(ref, "file:"); ok {
		if path == "" {
			return "", fmt.Errorf("${file:} needs a path")
		}
		path, err := interpolateDepth(path, baseDir, depth+1)
		if err != nil {
			return "", fmt.Errorf("in the path of ${%s}: %w", ref, err)
		}
		if !filepath.IsAbs(path) && baseDir != "" {
			path = filepath.Join(baseDir, path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			// The os error names the path; the content is never printed.
			return "", fmt.Errorf("reading secret for ${%s}: %w", ref, err)
		}
		return strings.TrimRight(string(data), "\r\n"), nil
	}
	name, def, hasDef := strings.Cut(ref, ":-")
	if !envName.MatchString(name) {
		return "", fmt.Errorf("bad reference ${%s}: want ${VAR}, ${VAR:-default} or ${file:PATH} (write $${ for a literal ${)", ref)
	}
	v, set := os.LookupEnv(name)
	if hasDef && v == "" {
		d, err := interpolateDepth(def, baseDir, depth+1)
		if err != nil {
			return "", fmt.Errorf("in the default of ${%s:-...}: %w", name, err)
		}
		return d, nil
	}
	if !set {
		return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)
	}
	return v, nil
}
