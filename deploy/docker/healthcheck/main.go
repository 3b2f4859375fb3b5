// Command healthcheck is the container health probe of the MyMONIT images,
// which have no shell and no curl. It takes one URL, as its argument or
// from MYMONIT_HEALTHCHECK_URL:
//
//	http://host:port/path   GET; healthy on a 2xx answer
//	tcp://host:port         healthy when a connection opens
//
// and exits 0 when healthy, 1 otherwise, printing why. Each attempt gives up
// after MYMONIT_HEALTHCHECK_TIMEOUT (default 3s).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	target := getenv("MYMONIT_HEALTHCHECK_URL")
	switch len(args) {
	case 0:
	case 1:
		target = args[0]
	default:
		return fmt.Errorf("usage: healthcheck [URL] (got %d arguments)", len(args))
	}
	if target == "" {
		return errors.New("no URL: pass one or set MYMONIT_HEALTHCHECK_URL")
	}
	timeout := 3 * time.Second
	if s := getenv("MYMONIT_HEALTHCHECK_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("MYMONIT_HEALTHCHECK_TIMEOUT=%q: want a positive duration such as 3s", s)
		}
		timeout = d
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("URL %q: want http://host:port/path or tcp://host:port", target)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch u.Scheme {
	case "http", "https":
		return probeHTTP(ctx, u, stdout)
	case "tcp":
		return probeTCP(ctx, u.Host, stdout)
	default:
		return fmt.Errorf("URL %q: scheme %q not supported (http, https, tcp)", target, u.Scheme)
	}
}

func probeHTTP(ctx context.Context, u *url.URL, stdout io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", u.Redacted(), err)
	}
	req.Header.Set("User-Agent", "mymonit-healthcheck")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
	}
	fmt.Fprintf(stdout, "GET %s: %s\n", u.Redacted(), resp.Status)
	return nil
}

func probeTCP(ctx context.Context, addr string, stdout io.Writer) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	conn.Close()
	fmt.Fprintf(stdout, "connect %s: ok\n", addr)
	return nil
}
