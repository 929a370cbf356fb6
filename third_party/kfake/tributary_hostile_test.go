package kfake

// tributary patch tests: a client that sends hostile bytes to the broker's
// port must not crash the process or make it allocate what it announces.

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// frame prefixes body with its big-endian size, as a Kafka client does.
func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// requestFrame encodes req with a v1 (or flexible v2) request header.
func requestFrame(req kmsg.Request, corr int32) []byte {
	body := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	body = binary.BigEndian.AppendUint16(body, uint16(req.GetVersion()))
	body = binary.BigEndian.AppendUint32(body, uint32(corr))
	body = append(body, 0xff, 0xff) // null client id
	if req.IsFlexible() {
		body = append(body, 0) // no header tags
	}
	return frame(req.AppendTo(body))
}

// startHostileCluster starts a one-broker cluster on loopback and returns its
// address.
func startHostileCluster(t testing.TB, opts ...Opt) (*Cluster, string) {
	t.Helper()
	c, err := NewCluster(append([]Opt{NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()[0]
}

// apiVersionsWorks sends an ApiVersions request on a new connection and
// checks the answer: the broker still serves.
func apiVersionsWorks(t testing.TB, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("broker no longer accepts connections: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "t", "1"
	if _, err := conn.Write(requestFrame(req, 7)); err != nil {
		t.Fatalf("writing ApiVersions: %v", err)
	}
	size := make([]byte, 4)
	if _, err := io.ReadFull(conn, size); err != nil {
		t.Fatalf("broker did not answer ApiVersions: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatalf("reading ApiVersions response: %v", err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 7 {
		t.Fatalf("ApiVersions response correlation id %d, want 7", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(3)
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatalf("parsing ApiVersions response: %v", err)
	}
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions answered error %d with %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
}

// closedByBroker reads from conn until the broker closes it; it fails if the
// broker answers or keeps the connection open.
func closedByBroker(t testing.TB, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(make([]byte, 64))
	if err == nil {
		t.Fatalf("broker answered %d bytes instead of closing the connection", n)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("broker kept the connection open")
	}
}

// The issue 11 crash: api_key=999 dereferenced a nil request in read().
func TestTributaryUnknownAPIKeyClosesConnection(t *testing.T) {
	_, addr := startHostileCluster(t)
	full := frame([]byte{0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff}) // key 999, v0, corr 1, null client id
	short := []byte{0, 0, 0, 6, 0x03, 0xe7, 0, 0, 0, 1}             // the 10-byte frame of the report
	negVersion := frame([]byte{0, 3, 0xff, 0xff, 0, 0, 0, 1, 0xff, 0xff})
	for name, f := range map[string][]byte{"full header": full, "10-byte frame": short, "negative version": negVersion} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(f); err != nil {
				t.Fatal(err)
			}
			closedByBroker(t, conn)
			apiVersionsWorks(t, addr)
		})
	}
}

// A frame announcing more than MaxRequestBytes (or a negative size) is
// refused at once: the connection closes without the body being sent, so
// nothing of the announced size was allocated or awaited.
func TestTributaryOversizedFrameClosesConnection(t *testing.T) {
	_, addr := startHostileCluster(t, MaxRequestBytes(1<<20))
	for name, size := range map[string]uint32{"4 GiB": 0xffffffff - 1, "2 MiB": 2 << 20, "negative": 0x80000000} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, size)); err != nil {
				t.Fatal(err)
			}
			closedByBroker(t, conn)
		})
	}
	// A frame within the limit is still served.
	apiVersionsWorks(t, addr)
}

// An ApiVersions request newer than the broker still gets Kafka's answer
// (UNSUPPORTED_VERSION at v0) so the client can downgrade.
func TestTributaryNewerApiVersionsAnswered(t *testing.T) {
	_, addr := startHostileCluster(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(frame([]byte{0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff, 0, 1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	size := make([]byte, 4)
	if _, err := io.ReadFull(conn, size); err != nil {
		t.Fatalf("no answer to ApiVersions v99: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse() // v0
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 35 { // UNSUPPORTED_VERSION
		t.Fatalf("ApiVersions v99 answered error code %d, want 35", resp.ErrorCode)
	}
}

// seedRequests are valid requests of the kinds a client sends first, the
// starting points the fuzzers mutate.
func seedRequests() [][]byte {
	var out [][]byte
	add := func(r kmsg.Request, v int16) {
		r.SetVersion(v)
		out = append(out, requestFrame(r, 1)[4:])
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "f", "1"
	add(av, 3)
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	md.Topics = append(md.Topics, mt)
	md.AllowAutoTopicCreation = true
	add(md, 12)
	add(md, 4)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "t", 1, 1
	ct.Topics = append(ct.Topics, ctt)
	add(ct, 7)
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks = -1
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = make([]byte, 61)
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	add(pr, 9)
	add(pr, 3)
	fr := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 10
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	fr.MaxBytes = 1 << 10
	add(fr, 11)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	add(fc, 3)
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = "g", "consumer", 6000, 6000
	add(jg, 5)
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionTimeoutMillis = 1000
	add(ip, 4)
	out = append(out, []byte{0x03, 0xe7, 0, 0, 0, 1}, []byte{0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff})
	return out
}

// FuzzTributaryParseRequest: no request frame makes parseRequest panic, and
// what it accepts is a request of a known key within its versions.
func FuzzTributaryParseRequest(f *testing.F) {
	for _, s := range seedRequests() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		kreq, _, _, err := parseRequest(body)
		if err != nil {
			return
		}
		if kreq == nil {
			t.Fatal("parseRequest returned neither a request nor an error")
		}
		if v := kreq.GetVersion(); v < 0 || (v > kreq.MaxVersion() && kreq.Key() != 18) {
			t.Fatalf("accepted %s version %d outside 0..%d", kmsg.NameForKey(kreq.Key()), v, kreq.MaxVersion())
		}
		// The accepted header must be what the frame said.
		r := kbin.Reader{Src: body}
		if key := r.Int16(); key != kreq.Key() {
			t.Fatalf("frame key %d parsed as %d", key, kreq.Key())
		}
	})
}

// FuzzTributaryBrokerFrame sends each input as one request frame to a live
// broker (framing, parsing and the request's handler all run), then checks
// that the broker still answers on a new connection. A panic anywhere on
// that path ends the process and fails the fuzz run.
func FuzzTributaryBrokerFrame(f *testing.F) {
	for _, s := range seedRequests() {
		f.Add(s)
	}
	// One cluster for all inputs of this process (each fuzz worker
	// process runs the target once), so state built by earlier inputs
	// meets later ones.
	c, err := NewCluster(NumBrokers(1), DataDir(f.TempDir()), MaxRequestBytes(1<<20), AllowAutoTopicCreation())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	f.Fuzz(func(t *testing.T, body []byte) {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("broker no longer accepts connections: %v", err)
		}
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write(frame(body)); err == nil {
			// An answer, a close or a wait (a fetch waits for
			// data): all are fine, the check below is what counts.
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = conn.Read(make([]byte, 4))
		}
		conn.Close()
		apiVersionsWorks(t, addr)
	})
}
