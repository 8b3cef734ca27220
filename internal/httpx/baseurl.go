package httpx

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ParseBaseURL checks an API base URL given in the configuration key key
// (e.g. "sources.threatcommand.url"): http or https, a host, no credentials
// (credentials names the keys that hold them instead), no query or fragment.
// example is a valid value for the messages. The path keeps no trailing
// slash. Errors never repeat the value, which could hold a password.
func ParseBaseURL(s, key, example, credentials string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%s is empty", key)
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the input
		}
		return nil, fmt.Errorf("%s is not a valid URL: %v", key, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%s must start with https:// or http:// (e.g. %s)", key, example)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%s has no host (e.g. %s)", key, example)
	case u.User != nil:
		return nil, fmt.Errorf("%s must not contain credentials: set %s instead", key, credentials)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%s must not have a query or a fragment", key)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}
