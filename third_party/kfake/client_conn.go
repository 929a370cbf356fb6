package kfake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type (
	clientConn struct {
		c      *Cluster
		b      *broker
		conn   net.Conn
		respCh chan clientResp
		done   chan struct{} // closed when read() returns
		mute   chan bool     // capacity 1: serializes request processing per connection; false = stop reading

		saslStage saslStage
		s0        *scramServer0
		user      string // authenticated user, set after SASL completes

		// hasSessionExpiry is set at authenticate time when
		// connections.max.reauth.ms is positive. Re-authentication is
		// gated on the connection's stored session expiration, not the
		// live config (KafkaChannel.maybeBeginServerReauthentication
		// checks the authenticator's session expiration time), so a
		// config change affects only sessions established after it.
		hasSessionExpiry bool
	}

	clientReq struct {
		cc     *clientConn
		kreq   kmsg.Request
		at     time.Time
		cid    string
		corr   int32
		faults *faultCheck // faults that can match this request, see Fault

		// Pre-validated error topics to merge into the response,
		// used when TopicID resolution fails for some topics while
		// the rest proceed through normal handling.
		offsetCommitErrTopics []kmsg.OffsetCommitResponseTopic
	}

	clientResp struct {
		kresp kmsg.Response
		corr  int32
		err   error
		skip  bool // acks=0 produce: nothing to write, just unmute
	}
)

func (creq *clientReq) empty() bool { return creq == nil || creq.cc == nil || creq.kreq == nil }

// unmute signals the read goroutine that it may submit the next request.
// ok=true means the prior response was written successfully; ok=false
// tells read to stop (the connection is dead).
func (cc *clientConn) unmute(ok bool) {
	select {
	case cc.mute <- ok:
	case <-cc.done:
	case <-cc.c.die:
	}
}

// reply sends a response back to the client, respecting connection close
// and cluster shutdown. It returns false if the client will never see the
// response, either because the connection died or because the cluster is
// shutting down.
func (creq *clientReq) reply(kresp kmsg.Response) bool {
	select {
	case creq.cc.respCh <- clientResp{kresp: kresp, corr: creq.corr}:
		return true
	case <-creq.cc.done:
	case <-creq.cc.c.die:
	}
	return false
}

func (cc *clientConn) read() {
	defer close(cc.done)
	defer cc.conn.Close()

	type read struct {
		body []byte
		err  error
	}
	var (
		who    = cc.conn.RemoteAddr()
		size   = make([]byte, 4)
		readCh = make(chan read, 1)
	)
	maxBytes := cc.c.cfg.maxRequestBytes
	if maxBytes <= 0 {
		maxBytes = defaultMaxRequestBytes
	}
	for {
		go func() {
			if _, err := io.ReadFull(cc.conn, size); err != nil {
				readCh <- read{err: err}
				return
			}
			// tributary patch: the announced size is checked before
			// anything is allocated for it. Upstream allocated whatever
			// a frame announced, up to 4 GiB; Kafka closes a connection
			// whose frame is negative or above socket.request.max.bytes
			// (read unsigned, a negative size is above any limit).
			n := binary.BigEndian.Uint32(size)
			if n > uint32(maxBytes) {
				readCh <- read{err: fmt.Errorf("%w: %d bytes announced, limit %d (socket.request.max.bytes)", errFrameSize, n, maxBytes)}
				return
			}
			body := make([]byte, n)
			_, err := io.ReadFull(cc.conn, body)
			readCh <- read{body: body, err: err}
		}()

		var read read
		select {
		case <-cc.c.die:
			return
		case read = <-readCh:
		}

		if err := read.err; err != nil {
			if errors.Is(err, errFrameSize) {
				cc.c.cfg.logger.Logf(LogLevelWarn, "client %s: closing connection: %v", who, err)
			}
			return
		}

		kreq, corr, clientID, err := parseRequest(read.body)
		if err != nil {
			// Kafka closes the connection of a request it cannot
			// parse (an unknown API key included).
			cc.c.cfg.logger.Logf(LogLevelWarn, "client %s: closing connection: %v", who, err)
			return
		}

		// Within Kafka, a null client ID is treated as an empty string.
		var cid string
		if clientID != nil {
			cid = *clientID
		}

		// Wait until the previous request's response has been fully
		// written before submitting the next. This matches the real
		// Kafka broker's per-connection serial request processing.
		// write() sends true after a successful write, false on error.
		// The channel is pre-filled with true so the first request
		// proceeds immediately.
		select {
		case ok := <-cc.mute:
			if !ok {
				return
			}
		case <-cc.c.die:
			return
		}
		select {
		case cc.c.reqCh <- &clientReq{cc: cc, kreq: kreq, at: time.Now(), cid: cid, corr: corr}:
		case <-cc.c.die:
			return
		}
	}
}

func (cc *clientConn) write() {
	defer cc.conn.Close()

	var (
		who     = cc.conn.RemoteAddr()
		writeCh = make(chan error, 1)
		buf     []byte
	)
	for {
		var resp clientResp
		select {
		case resp = <-cc.respCh:
		case <-cc.done:
			return
		case <-cc.c.die:
			return
		}
		// acks=0 produce: no response bytes exist, we only unmute so
		// that read() can submit the next request.
		if resp.skip {
			cc.unmute(true)
			continue
		}
		if err := resp.err; err != nil {
			cc.c.cfg.logger.Logf(LogLevelInfo, "client %s request unable to be handled: %v", who, err)
			cc.unmute(false)
			return
		}

		buf = append(buf[:0], 0, 0, 0, 0, 0, 0, 0, 0) // size (4) + correlation ID (4)
		if resp.kresp.IsFlexible() && resp.kresp.Key() != 18 {
			buf = append(buf, 0) // empty tagged fields section
		}
		buf = resp.kresp.AppendTo(buf)

		binary.BigEndian.PutUint32(buf[:4], uint32(len(buf)-4))
		binary.BigEndian.PutUint32(buf[4:8], uint32(resp.corr))

		go func() {
			_, err := cc.conn.Write(buf)
			writeCh <- err
		}()

		var err error
		select {
		case <-cc.c.die:
			return
		case err = <-writeCh:
		}
		cc.unmute(err == nil)
		if err != nil {
			return
		}
	}
}

// errFrameSize marks a request frame whose announced size is refused.
var errFrameSize = errors.New("request frame size refused")

// parseRequest decodes one request frame (the bytes after the size): the
// header, then the body of the request its key names.
//
// tributary patch: upstream took kmsg.RequestForKey's result as given, so a
// frame with an API key kmsg does not know (api_key=999) dereferenced nil and
// crashed the process, and a version outside the range kmsg knows was parsed
// anyway. Both are errors now; the caller closes the connection, as Kafka
// does for a request header it cannot parse.
func parseRequest(body []byte) (kreq kmsg.Request, corr int32, clientID *string, err error) {
	reader := kbin.Reader{Src: body}
	key := reader.Int16()
	version := reader.Int16()
	corr = reader.Int32()
	clientID = reader.NullableString()
	if err := reader.Complete(); err != nil {
		return nil, 0, nil, fmt.Errorf("request header of %d bytes is truncated", len(body))
	}
	kreq = kmsg.RequestForKey(key)
	if kreq == nil {
		return nil, 0, nil, fmt.Errorf("unknown API key %d (version %d, correlation id %d)", key, version, corr)
	}
	if key == 18 && version > kreq.MaxVersion() {
		// A client newer than this broker: Kafka answers ApiVersions
		// with UNSUPPORTED_VERSION at v0 without reading the body
		// (handleApiVersions does the answering).
		kreq.SetVersion(version)
		return kreq, corr, clientID, nil
	}
	if version < 0 || version > kreq.MaxVersion() {
		return nil, 0, nil, fmt.Errorf("%s version %d is outside the versions this broker can parse (0 to %d)", kmsg.NameForKey(key), version, kreq.MaxVersion())
	}
	kreq.SetVersion(version)
	if kreq.IsFlexible() {
		kmsg.SkipTags(&reader)
	}
	if err := reader.Complete(); err != nil {
		return nil, 0, nil, fmt.Errorf("%s v%d: request header tags are truncated", kmsg.NameForKey(key), version)
	}
	if err := kreq.ReadFrom(reader.Src); err != nil {
		return nil, 0, nil, fmt.Errorf("unable to parse %s v%d request: %w", kmsg.NameForKey(key), version, err)
	}
	return kreq, corr, clientID, nil
}
