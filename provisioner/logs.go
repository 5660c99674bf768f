package provisioner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// Logs streams the site container's stdout and stderr (interleaved, Docker's
// multiplexing removed): the last tail lines (tail <= 0: all), then, with
// follow, new lines until ctx ends or the reader is closed.
func (p *Provisioner) Logs(ctx context.Context, siteID string, tail int, follow bool) (io.ReadCloser, error) {
	rc, err := p.cli.ContainerLogs(ctx, containerName(p.cfg.Namespace, siteID), logOptions(tail, follow))
	if err != nil {
		return nil, fmt.Errorf("logs of site %s: %w", siteID, err)
	}
	return demuxLogs(rc), nil
}

// logOptions are the engine's options for the last tail lines (tail <= 0:
// all) of both streams, with follow.
func logOptions(tail int, follow bool) container.LogsOptions {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Tail: "all"}
	if tail > 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	return opts
}

// demuxLogs turns the engine's multiplexed log stream rc into plain text.
// The demux goroutine is owned by the returned reader: closing it closes
// rc, which ends StdCopy.
func demuxLogs(rc io.ReadCloser) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		pw.CloseWithError(err)
	}()
	return &logReader{PipeReader: pr, rc: rc}
}

type logReader struct {
	*io.PipeReader
	rc io.Closer
}

func (l *logReader) Close() error {
	l.PipeReader.Close()
	return l.rc.Close()
}

// logTail returns the container's last n log lines, for start errors.
func (p *Provisioner) logTail(ctx context.Context, id string, n int) string {
	rc, err := p.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return fmt.Sprintf("(logs unavailable: %v)", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, io.LimitReader(rc, 1<<20)); err != nil && buf.Len() == 0 {
		return fmt.Sprintf("(logs unavailable: %v)", err)
	}
	return buf.String()
}
