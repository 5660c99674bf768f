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

// logOptions are the engine's options for a container's or a service's
// logs: both streams, the last tail lines (all when tail <= 0).
func logOptions(tail int, follow bool) container.LogsOptions {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Tail: "all"}
	if tail > 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	return opts
}

// demuxLogs turns the engine's multiplexed log stream (no TTY) into plain
// text, stdout and stderr interleaved as written.
func demuxLogs(rc io.ReadCloser) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		pw.CloseWithError(err)
	}()
	return &logReader{PipeReader: pr, rc: rc}
}

// logReader closes the engine's stream with the pipe, which ends the
// demultiplexing goroutine.
type logReader struct {
	*io.PipeReader
	rc io.Closer
}

func (l *logReader) Close() error {
	l.PipeReader.Close()
	return l.rc.Close()
}

// LogTail implements ReplicaWatcher: the container's last n log lines,
// for start errors.
func (r *DockerRuntime) LogTail(ctx context.Context, id string, n int) string {
	return readLogTail(r.cli.ContainerLogs(ctx, id, tailOptions(n)))
}

// tailOptions asks for the last n lines of stdout and stderr.
func tailOptions(n int) container.LogsOptions {
	return container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)}
}

// readLogTail reads a log tail the engine answered (a container's or a
// task's, multiplexed: no TTY), 1 MiB at most, or says why there is none.
func readLogTail(rc io.ReadCloser, err error) string {
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
