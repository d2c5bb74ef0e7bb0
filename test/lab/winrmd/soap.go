package winrmd

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Namespaces of WS-Management and the Windows shell (MS-WSMV).
const (
	nsSOAP       = "http://www.w3.org/2003/05/soap-envelope"
	nsAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsTransfer   = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	nsWSMan      = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsWSManMSFT  = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
	nsShell      = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	nsFault      = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"

	anonymous = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

	actionCreate   = nsTransfer + "/Create"
	actionDelete   = nsTransfer + "/Delete"
	actionCommand  = nsShell + "/Command"
	actionSend     = nsShell + "/Send"
	actionReceive  = nsShell + "/Receive"
	actionSignal   = nsShell + "/Signal"
	actionFault    = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
	resourceCmd    = nsShell + "/cmd"
	stateDone      = nsShell + "/CommandState/Done"
	stateRunning   = nsShell + "/CommandState/Running"
	signalTerm     = nsShell + "/signal/terminate"
	signalCtrlC    = nsShell + "/signal/ctrl_c"
	faultDetailEnv = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MaxEnvelopeSize"
	faultDetailSel = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"
)

type option struct {
	Name  string `xml:"Name,attr"`
	Value string `xml:",chardata"`
}

type stream struct {
	Name      string `xml:"Name,attr"`
	CommandID string `xml:"CommandId,attr"`
	End       string `xml:"End,attr"`
	Data      string `xml:",chardata"`
}

// envelope is the part of a request the server reads.
type envelope struct {
	Header struct {
		Action           string   `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing Action"`
		MessageID        string   `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing MessageID"`
		ResourceURI      string   `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd ResourceURI"`
		MaxEnvelopeSize  string   `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd MaxEnvelopeSize"`
		OperationTimeout string   `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OperationTimeout"`
		Selectors        []option `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd SelectorSet>Selector"`
		Options          []option `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OptionSet>Option"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body struct {
		Shell *struct {
			InputStreams  string `xml:"InputStreams"`
			OutputStreams string `xml:"OutputStreams"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Shell"`
		CommandLine *struct {
			Command   string   `xml:"Command"`
			Arguments []string `xml:"Arguments"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandLine"`
		Send *struct {
			Streams []stream `xml:"Stream"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Send"`
		Receive *struct {
			DesiredStream struct {
				CommandID string `xml:"CommandId,attr"`
				Streams   string `xml:",chardata"`
			} `xml:"DesiredStream"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Receive"`
		Signal *struct {
			CommandID string `xml:"CommandId,attr"`
			Code      string `xml:"Code"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Signal"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

// parseEnvelope decodes a request. A large Send carries one long base64
// text; encoding/xml reads text a byte at a time, so that text is cut out
// first and the small rest decoded, which keeps the server from being the
// bottleneck of an upload benchmark.
func parseEnvelope(body []byte) (*envelope, error) {
	var env envelope
	if len(body) > 64<<10 {
		if start, end, ok := bigStreamText(body); ok {
			small := make([]byte, 0, len(body)-(end-start))
			small = append(append(small, body[:start]...), body[end:]...)
			if err := xml.Unmarshal(small, &env); err != nil {
				return nil, err
			}
			if env.Body.Send != nil && len(env.Body.Send.Streams) == 1 {
				env.Body.Send.Streams[0].Data = string(body[start:end])
				return &env, nil
			}
			env = envelope{}
		}
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	return &env, nil
}

// bigStreamText finds the text of the only Stream element of a Send body,
// if it is plain text (no entities, no CDATA).
func bigStreamText(body []byte) (start, end int, ok bool) {
	i := bytes.Index(body, []byte("Stream "))
	if i < 0 || bytes.Contains(body[i+1:], []byte("Stream ")) {
		return 0, 0, false
	}
	gt := bytes.IndexByte(body[i:], '>')
	if gt < 0 || body[i+gt-1] == '/' {
		return 0, 0, false
	}
	start = i + gt + 1
	lt := bytes.IndexByte(body[start:], '<')
	if lt < 0 {
		return 0, 0, false
	}
	end = start + lt
	if bytes.IndexByte(body[start:end], '&') >= 0 || bytes.HasPrefix(body[end:], []byte("<![")) {
		return 0, 0, false
	}
	return start, end, true
}

func (e *envelope) selector(name string) string {
	for _, s := range e.Header.Selectors {
		if strings.EqualFold(s.Name, name) {
			return strings.TrimSpace(s.Value)
		}
	}
	return ""
}

func (e *envelope) option(name string) string {
	for _, o := range e.Header.Options {
		if strings.EqualFold(o.Name, name) {
			return strings.TrimSpace(o.Value)
		}
	}
	return ""
}

// parseDuration reads the xs:duration forms clients send for
// OperationTimeout: PT60S, PT20.000S, PT1M30S.
func parseDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "PT") {
		return 0, false
	}
	s = s[2:]
	var total time.Duration
	for s != "" {
		i := strings.IndexAny(s, "HMS")
		if i <= 0 {
			return 0, false
		}
		var v float64
		if _, err := fmt.Sscanf(s[:i], "%g", &v); err != nil {
			return 0, false
		}
		unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second}[s[i]]
		total += time.Duration(v * float64(unit))
		s = s[i+1:]
	}
	return total, true
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// respond writes a SOAP envelope with the given action and body.
func respond(w http.ResponseWriter, status int, action, relatesTo, body string) {
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<s:Envelope xml:lang="en-US" xmlns:s="%s" xmlns:a="%s" xmlns:x="%s" xmlns:w="%s" xmlns:rsp="%s" xmlns:p="%s">`+
		`<s:Header><a:Action>%s</a:Action><a:MessageID>%s</a:MessageID><a:To>%s</a:To><a:RelatesTo>%s</a:RelatesTo></s:Header>`+
		`<s:Body>%s</s:Body></s:Envelope>`,
		nsSOAP, nsAddressing, nsTransfer, nsWSMan, nsShell, nsWSManMSFT,
		action, "uuid:"+newGUID(), anonymous, xmlText(relatesTo), body)
}

// Fault is one WS-Management fault as Windows returns it: a SOAP code and
// subcode, a reason, and a WSManFault detail with the Windows error code.
type Fault struct {
	Sender  bool   // s:Sender rather than s:Receiver
	Subcode string // e.g. w:TimedOut
	Reason  string
	Detail  string // optional w:FaultDetail URI
	Code    uint32 // WSManFault Code, e.g. 2150858793
	Message string
}

// Windows fault codes the server returns (shared/REFERENCE-windows.md).
const (
	CodeTimedOut       = 2150858793
	CodeShellNotFound  = 2150858843
	CodeMaxShells      = 2150859173
	CodeMaxOperations  = 2150859174
	CodeEnvelopeSize   = 2150859025 // HRESULT 0x80338111, the MaxEnvelopeSize quota.
	CodeFilenameTooLng = 206        // ERROR_FILENAME_EXCED_RANGE from CreateProcessW.
	CodeInvalidParam   = 87
	CodeActionUnknown  = 2150858771
)

func faultTimedOut() *Fault {
	const msg = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout."
	return &Fault{Subcode: "w:TimedOut", Reason: msg, Code: CodeTimedOut, Message: msg}
}

func faultShellNotFound(id string) *Fault {
	return &Fault{Sender: true, Subcode: "w:InvalidSelectors", Detail: faultDetailSel,
		Reason: "The WS-Management service cannot process the request because the request contained invalid selectors for the resource.",
		Code:   CodeShellNotFound,
		Message: fmt.Sprintf("The request for the Windows Remote Shell with ShellId %s failed because the shell was not found on the server. "+
			"Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. "+
			"Provide the correct ShellId or create a new shell and retry the operation.", id)}
}

func faultMaxShells(n int) *Fault {
	return &Fault{Subcode: "w:QuotaLimit", Reason: "The WS-Management service cannot process the request because the request exceeded a quota limit.",
		Code: CodeMaxShells,
		Message: fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, "+
			"which has been exceeded. Close existing shells or raise the quota for this user.", n)}
}

func faultMaxOperations(n int) *Fault {
	return &Fault{Subcode: "w:QuotaLimit", Reason: "The WS-Management service cannot process the request because the request exceeded a quota limit.",
		Code: CodeMaxOperations,
		Message: fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent operations, "+
			"which has been exceeded. Close existing operations for this user, or raise the quota for this user.", n)}
}

func faultEnvelope(size, max int) *Fault {
	return &Fault{Sender: true, Subcode: "w:EncodingLimit", Detail: faultDetailEnv,
		Reason: "The WS-Management service cannot process the request because the XML is invalid or the request size exceeded the configured MaxEnvelopeSize quota.",
		Code:   CodeEnvelopeSize,
		Message: fmt.Sprintf("The WinRM client sent a request to the remote WS-Management service and was notified that the request size exceeded the configured MaxEnvelopeSize quota. "+
			"The request was %d bytes; the limit is %d bytes (MaxEnvelopeSizekb %d).", size, max, max/1024)}
}

func faultInvalid(msg string) *Fault {
	return &Fault{Sender: true, Subcode: "w:InvalidParameter", Reason: "The parameter is incorrect.", Code: CodeInvalidParam, Message: msg}
}

func (f *Fault) write(w http.ResponseWriter, machine, relatesTo string) {
	code := "s:Receiver"
	if f.Sender {
		code = "s:Sender"
	}
	detail := ""
	if f.Detail != "" {
		detail = "<w:FaultDetail>" + f.Detail + "</w:FaultDetail>"
	}
	body := fmt.Sprintf(`<s:Fault><s:Code><s:Value>%s</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code>`+
		`<s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason><s:Detail>%s`+
		`<f:WSManFault xmlns:f="%s" Code="%d" Machine="%s"><f:Message>%s</f:Message></f:WSManFault></s:Detail></s:Fault>`,
		code, f.Subcode, xmlText(f.Reason), detail, nsFault, f.Code, xmlText(machine), xmlText(f.Message))
	respond(w, http.StatusInternalServerError, actionFault, relatesTo, body)
}
