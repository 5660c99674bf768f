package ui

import (
	"bytes"
	"html/template"
	"testing"
)

// A value put in a link's query with the query func is escaped once: the
// link the audit log gives for an actor finds that actor.
func TestQueryEscapedOnce(t *testing.T) {
	tpl := template.Must(template.New("q").Funcs(funcs).Parse(`<a href="/audit?actor={{query .}}&amp;exact=1">x</a>`))
	var buf bytes.Buffer
	if err := tpl.Execute(&buf, "api_key:ab12 (operator)"); err != nil {
		t.Fatal(err)
	}
	// &#43; is the HTML form of +, a space in a query.
	if want := `<a href="/audit?actor=api_key%3Aab12&#43;%28operator%29&amp;exact=1">x</a>`; buf.String() != want {
		t.Fatalf("got  %s\nwant %s", buf.String(), want)
	}
}
