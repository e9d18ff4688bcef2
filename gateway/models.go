package gateway

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"

	"aima/inference"
)

// writeModelList answers GET /v1/models: OpenAI's list object, written
// object by object as encoding/json would write it (toObject's fields, in
// order). A daemon with 10,000 services lists 20,000 names, 4 MB of JSON;
// encoding/json's reflection and a copy of the whole list took more than
// the listing itself, this writes it in a few milliseconds through one
// small buffer.
func writeModelList(w http.ResponseWriter, list []inference.Model) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.WriteString(`{"object":"list","data":[`)
	var buf []byte
	for i, m := range list {
		buf = buf[:0]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendModelObject(buf, m)
		if _, err := bw.Write(buf); err != nil {
			return // the client went away
		}
	}
	_, _ = bw.WriteString("]}\n")
	_ = bw.Flush()
}

// appendModelObject appends toObject(m) as JSON.
func appendModelObject(b []byte, m inference.Model) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"object":"model","created":`...)
	b = strconv.AppendInt(b, m.Created, 10)
	b = append(b, `,"owned_by":"aima","aima":{"id":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"service_id":`...)
	b = appendString(b, m.ServiceID)
	b = append(b, `,"status":`...)
	b = appendString(b, string(m.Status))
	if m.Phase != "" {
		b = append(b, `,"phase":`...)
		b = appendString(b, string(m.Phase))
	}
	if m.OnDemand {
		b = append(b, `,"on_demand":true`...)
	}
	if m.SwapGroup != "" {
		b = append(b, `,"swap_group":`...)
		b = appendString(b, m.SwapGroup)
	}
	if m.Alias {
		b = append(b, `,"alias":true`...)
	}
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, m.Created, 10)
	return append(b, "}}"...)
}

// appendString appends s as a JSON string: plain printable ASCII (every
// name aima's own checks let through) as it is, anything else the way
// encoding/json writes it (without HTML escaping, as writeJSON).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			var sb []byte
			enc := json.NewEncoder((*byteSink)(&sb))
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(b, sb[:len(sb)-1]...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// byteSink is an io.Writer appending to a byte slice.
type byteSink []byte

func (s *byteSink) Write(p []byte) (int, error) { *s = append(*s, p...); return len(p), nil }
