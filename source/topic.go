package source

import "strings"

// TopicName is Debezium's data change topic <prefix>.<a>.<b> (PostgreSQL:
// schema and table; MySQL: database and table) with every character Kafka
// refuses in a topic name replaced by '_' in a and b, as Debezium's topic
// naming strategy sanitises them ('.' too, so the name keeps its three
// parts).
func TopicName(prefix, a, b string) string {
	return prefix + "." + topicPart(a) + "." + topicPart(b)
}

func topicPart(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !topicChar(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && topicChar(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func topicChar(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'
}
