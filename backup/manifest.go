package backup

import (
	"runtime/debug"
	"time"
)

// FormatVersion is the archive layout this package writes and reads.
const FormatVersion = 1

// ManifestName is the archive's last entry: what it holds, and the
// checksum and size of every stream in it.
const ManifestName = "manifest.json"

// Manifest describes an archive. It comes last in the archive because the
// checksums are known only once everything before it was written; a
// restore reads the whole archive before it changes anything anyway.
type Manifest struct {
	Format int `json:"format"`
	// Binary is the version of caddy-multitenant that wrote the archive.
	Binary string `json:"binary"`
	// SchemaVersion is the platform schema's migration version; a binary
	// whose migrations end before it cannot restore the archive.
	SchemaVersion int32     `json:"schema_version"`
	Schema        string    `json:"schema"`
	CreatedAt     time.Time `json:"created_at"`
	// Site is set in an archive holding one site's volume (and the whole
	// database): it restores that site only.
	Site string `json:"site,omitempty"`
	// Tables are in an order they load in: a table after those its
	// foreign keys point to.
	Tables    []Table    `json:"tables"`
	Sequences []Sequence `json:"sequences"`
	Volumes   []Volume   `json:"volumes"`
}

// Stream is a byte stream stored as consecutive parts of at most
// PartSize bytes (a tar entry needs its size before its content, and a
// stream's is known only at its end): entries <Name>/000000, /000001, ….
type Stream struct {
	Name   string `json:"name"`
	Parts  int    `json:"parts"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Table is one table's rows, in COPY's text format, of Columns.
type Table struct {
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
	Stream
}

// Sequence is a sequence's value when the archive was made.
type Sequence struct {
	Name  string `json:"name"`
	Value int64  `json:"value"`
}

// Volume is a site's volume as the Docker engine's archive API gives it:
// a tar of the site's data directory.
type Volume struct {
	SiteID string `json:"site_id"`
	Stream
}

// streams returns every stream of the manifest.
func (m *Manifest) streams() []Stream {
	out := make([]Stream, 0, len(m.Tables)+len(m.Volumes))
	for _, t := range m.Tables {
		out = append(out, t.Stream)
	}
	for _, v := range m.Volumes {
		out = append(out, v.Stream)
	}
	return out
}

// modulePath is this module's path, for finding its version in the
// binary's build info (the main module with go build, a dependency with
// xcaddy).
const modulePath = "github.com/agistaffers/caddy-multitenant"

func binaryVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if bi.Main.Path == modulePath {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			if d.Replace != nil && d.Replace.Version != "" {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return "unknown"
}
