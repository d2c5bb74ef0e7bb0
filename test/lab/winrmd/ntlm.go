package winrmd

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //nolint:staticcheck // NTLM is defined on MD4; this is the lab's acceptor.
)

// The NTLM acceptor side. Neither github.com/bodgit/ntlmssp nor
// github.com/Azure/go-ntlmssp (the initiators masterzen/winrm uses) ships an
// acceptor, so the lab carries the minimum of MS-NLMP it needs: issue a
// CHALLENGE, check an NTLMv2 AUTHENTICATE. No signing or sealing: the lab
// speaks HTTPS only, where WinRM does not require NTLM message encryption.

const ntlmSignature = "NTLMSSP\x00"

// Negotiate flags of MS-NLMP 2.2.2.5 the challenge offers.
const (
	flagUnicode            = 0x00000001
	flagRequestTarget      = 0x00000004
	flagNTLM               = 0x00000200
	flagAlwaysSign         = 0x00008000
	flagTargetTypeServer   = 0x00020000
	flagExtendedSessionSec = 0x00080000
	flagTargetInfo         = 0x00800000
	flag128                = 0x20000000
	flag56                 = 0x80000000
)

func ntlmMessageType(b []byte) uint32 {
	if len(b) < 12 || string(b[:8]) != ntlmSignature {
		return 0
	}
	return binary.LittleEndian.Uint32(b[8:12])
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// ntlmChallenge builds a CHALLENGE message for the machine name and returns
// it with its server challenge.
func ntlmChallenge(machine string) (msg, serverChallenge []byte, err error) {
	serverChallenge = make([]byte, 8)
	if _, err := rand.Read(serverChallenge); err != nil {
		return nil, nil, err
	}
	target := utf16le(strings.ToUpper(machine))
	var info bytes.Buffer
	av := func(id uint16, v []byte) {
		_ = binary.Write(&info, binary.LittleEndian, id)
		_ = binary.Write(&info, binary.LittleEndian, uint16(len(v)))
		info.Write(v)
	}
	av(2, target) // MsvAvNbDomainName
	av(1, target) // MsvAvNbComputerName
	av(4, utf16le(strings.ToLower(machine)))
	av(3, utf16le(strings.ToLower(machine)))
	ts := make([]byte, 8)
	binary.LittleEndian.PutUint64(ts, uint64(time.Now().UnixNano()/100)+116444736000000000)
	av(7, ts) // MsvAvTimestamp
	av(0, nil)

	const header = 48
	var m bytes.Buffer
	m.WriteString(ntlmSignature)
	_ = binary.Write(&m, binary.LittleEndian, uint32(2))
	_ = binary.Write(&m, binary.LittleEndian, uint16(len(target)))
	_ = binary.Write(&m, binary.LittleEndian, uint16(len(target)))
	_ = binary.Write(&m, binary.LittleEndian, uint32(header))
	_ = binary.Write(&m, binary.LittleEndian, uint32(flagUnicode|flagRequestTarget|flagNTLM|flagAlwaysSign|
		flagTargetTypeServer|flagExtendedSessionSec|flagTargetInfo|flag128|flag56))
	m.Write(serverChallenge)
	m.Write(make([]byte, 8))
	_ = binary.Write(&m, binary.LittleEndian, uint16(info.Len()))
	_ = binary.Write(&m, binary.LittleEndian, uint16(info.Len()))
	_ = binary.Write(&m, binary.LittleEndian, uint32(header+len(target)))
	m.Write(target)
	m.Write(info.Bytes())
	return m.Bytes(), serverChallenge, nil
}

var errNTLMFormat = errors.New("malformed NTLM AUTHENTICATE message")

// ntlmVerify checks an NTLMv2 AUTHENTICATE message against the server
// challenge and returns the user it authenticates. password looks a user up.
func ntlmVerify(msg, serverChallenge []byte, password func(user string) (string, bool)) (string, error) {
	if ntlmMessageType(msg) != 3 || len(msg) < 64 {
		return "", errNTLMFormat
	}
	field := func(off int) ([]byte, error) {
		l := int(binary.LittleEndian.Uint16(msg[off:]))
		o := int(binary.LittleEndian.Uint32(msg[off+4:]))
		if o+l > len(msg) || o < 0 {
			return nil, errNTLMFormat
		}
		return msg[o : o+l], nil
	}
	nt, err := field(20)
	if err != nil {
		return "", err
	}
	domainB, err := field(28)
	if err != nil {
		return "", err
	}
	userB, err := field(36)
	if err != nil {
		return "", err
	}
	user, domain := fromUTF16le(userB), fromUTF16le(domainB)
	if len(nt) <= 24 {
		return "", errors.New("NTLMv1 responses are refused; use NTLMv2")
	}
	pw, ok := password(user)
	if !ok {
		return "", errors.New("unknown user")
	}
	h := md4.New()
	h.Write(utf16le(pw))
	v2 := hmacMD5(h.Sum(nil), utf16le(strings.ToUpper(user)+domain))
	proof := hmacMD5(v2, serverChallenge, nt[16:])
	if !hmac.Equal(proof, nt[:16]) {
		return "", errors.New("wrong password")
	}
	return user, nil
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}
