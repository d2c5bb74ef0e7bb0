package winrm

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"

	"github.com/mixedk8s/mixedk8s/transport"
)

// The shell operations of MS-WSMV, built with masterzen/winrm's message
// constructors and parsers and sent through the Conn's context-bound post.

func (c *Conn) send(ctx context.Context, m *soap.SoapMessage) (string, error) {
	defer m.Free()
	return c.tr.post(ctx, []byte(m.String()))
}

func (c *Conn) openShell(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, winrm.NewOpenShellRequest(c.url, &c.params))
	if err != nil {
		return "", fmt.Errorf("open a shell on %s: %w", c.cfg.Addr, err)
	}
	id, err := winrm.ParseOpenShellResponse(resp)
	if err != nil || id == "" {
		return "", fmt.Errorf("open a shell on %s: the response carries no ShellId (%v); check that the listener is WinRM", c.cfg.Addr, err)
	}
	return id, nil
}

// closeShell deletes the shell, best effort and briefly, even when ctx has
// ended: a leaked shell counts against MaxShellsPerUser until it idles out.
func (c *Conn) closeShell(ctx context.Context, shellID string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, _ = c.send(dctx, winrm.NewDeleteShellRequest(c.url, shellID, &c.params))
}

// startCommand starts line in the shell. skipCmd runs it without cmd.exe
// (CreateProcess's 32767-character limit instead of cmd's 8191); pipeStdin
// gives the process a pipe rather than a console, so binary stdin arrives
// unchanged.
func (c *Conn) startCommand(ctx context.Context, shellID, line string, skipCmd, pipeStdin bool) (string, error) {
	m := soap.NewMessage()
	m.Header().
		To(c.url).
		ReplyTo("http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous").
		MaxEnvelopeSize(c.params.EnvelopeSize).
		Id(messageID()).
		Locale(c.params.Locale).
		Timeout(c.params.Timeout).
		Action("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command").
		ResourceURI("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd").
		ShellId(shellID).
		AddOption(soap.NewHeaderOption("WINRS_CONSOLEMODE_STDIN", boolOption(!pipeStdin))).
		AddOption(soap.NewHeaderOption("WINRS_SKIP_CMD_SHELL", boolOption(skipCmd))).
		Build()
	body := m.CreateBodyElement("CommandLine", soap.DOM_NS_WIN_SHELL)
	m.CreateElement(body, "Command", soap.DOM_NS_WIN_SHELL).SetContent("<![CDATA[" + line + "]]>")
	resp, err := c.send(ctx, m)
	if err != nil {
		return "", err
	}
	id, err := winrm.ParseExecuteCommandResponse(resp)
	if err != nil || id == "" {
		return "", fmt.Errorf("start a command on %s: the response carries no CommandId (%v)", c.cfg.Addr, err)
	}
	return id, nil
}

func boolOption(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

func messageID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return "uuid:" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// sendTemplate is a Send envelope rendered once by masterzen/winrm and cut
// around its MessageID and stdin payload, so each chunk costs one base64
// encoding and a few copies instead of a DOM build and render.
type sendTemplate struct {
	head, mid, tail       string // head MessageID mid payload tail
	headEnd, midEnd, tEnd string // the same with End="true"
}

// payloadMarker is stdin whose base64 cannot occur elsewhere in an envelope.
var payloadMarker = []byte("mixedk8s:payload-marker")

func (c *Conn) newSendTemplate(shellID, commandID string) (sendTemplate, error) {
	cut := func(eof bool) (string, string, string, error) {
		m := winrm.NewSendInputRequest(c.url, shellID, commandID, payloadMarker, eof, &c.params)
		s := m.String()
		m.Free()
		mark := base64.StdEncoding.EncodeToString(payloadMarker)
		i := strings.Index(s, "uuid:")
		j := strings.Index(s, mark)
		if i < 0 || j < i+len("uuid:")+36 {
			return "", "", "", fmt.Errorf("render a Send envelope: unexpected shape")
		}
		return s[:i], s[i+len("uuid:")+36 : j], s[j+len(mark):], nil
	}
	var t sendTemplate
	var err error
	if t.head, t.mid, t.tail, err = cut(false); err != nil {
		return t, err
	}
	t.headEnd, t.midEnd, t.tEnd, err = cut(true)
	return t, err
}

// render is the Send envelope carrying data.
func (t *sendTemplate) render(data []byte, eof bool) []byte {
	head, mid, tail := t.head, t.mid, t.tail
	if eof {
		head, mid, tail = t.headEnd, t.midEnd, t.tEnd
	}
	id := messageID()
	n := base64.StdEncoding.EncodedLen(len(data))
	b := make([]byte, 0, len(head)+len(id)+len(mid)+n+len(tail))
	b = append(append(append(b, head...), id...), mid...)
	b = b[:len(b)+n]
	base64.StdEncoding.Encode(b[len(b)-n:], data)
	return append(b, tail...)
}

// sendChunkSize is the most stdin one Send can carry within the envelope:
// the payload travels as base64 (4 bytes per 3), so the chunk is 3/4 of the
// room the empty Send message leaves.
func sendChunkSize(url string, params *winrm.Parameters) int {
	m := winrm.NewSendInputRequest(url, "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000", nil, true, params)
	overhead := len(m.String()) + 512 // margin for longer IDs and attribute order
	m.Free()
	n := (params.EnvelopeSize - overhead) * 3 / 4
	return n - n%3
}

// receive collects the command's output into stdout and stderr as it
// arrives and returns its exit code. Each Receive waits at most the
// OperationTimeout (shortened to the context's deadline); w:TimedOut just
// means "no output yet" and loops.
func (c *Conn) receive(ctx context.Context, shellID, commandID string, stdout, stderr io.Writer) (int, error) {
	for {
		params := c.params
		timeout := c.cfg.OperationTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = max(min(timeout, time.Until(dl)), 500*time.Millisecond)
		}
		params.Timeout = isoDuration(timeout)
		resp, err := c.send(ctx, winrm.NewGetOutputRequest(c.url, shellID, commandID, "stdout stderr", &params))
		if isFault(err, FaultTimedOut) {
			continue
		}
		if err != nil {
			return -1, err
		}
		done, code, err := winrm.ParseSlurpOutputErrResponse(resp, stdout, stderr)
		if err != nil {
			return -1, fmt.Errorf("read output from %s: malformed Receive response: %w", c.cfg.Addr, err)
		}
		if done {
			return code, nil
		}
	}
}

// terminate signals the command to stop, best effort and briefly.
func (c *Conn) terminate(ctx context.Context, shellID, commandID string) {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, _ = c.send(tctx, winrm.NewSignalRequest(c.url, shellID, commandID, &c.params))
}

// lost reports whether err means the shell or its connection died (reboot,
// dropped connection, or the shell gone on the node).
func lost(err error) bool {
	return errors.Is(err, errDropped) || errors.Is(err, transport.ErrNotReady) || isFault(err, FaultShellNotFound)
}
