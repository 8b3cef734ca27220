package ecs

import "testing"

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want URLParts // Original is filled in; Port 0 means -1
	}{
		// From Elastic's pipeline test.
		{"http://example.com/test/abc", URLParts{Scheme: "http", Domain: "example.com", Path: "/test/abc", OK: true}},
		{"example.com/", URLParts{Path: "example.com/", Extension: "com/", OK: true}},

		{"https://user:pa%20ss@www.example.com:8443/a/b.php?x=1&y=%41#frag%21", URLParts{
			Scheme: "https", Domain: "www.example.com", Port: 8443, Path: "/a/b.php", Extension: "php",
			Query: "x=1&y=A", Fragment: "frag!", UserInfo: "user:pa ss", Username: "user", Password: "pa ss", OK: true,
		}},
		{"http://user@example.com/", URLParts{Scheme: "http", Domain: "example.com", Path: "/", UserInfo: "user", OK: true}},
		{"http://:secret@example.com/", URLParts{Scheme: "http", Domain: "example.com", Path: "/", UserInfo: ":secret", Password: "secret", OK: true}},
		{"http://example.com", URLParts{Scheme: "http", Domain: "example.com", OK: true}},
		{"HTTP://Example.COM/", URLParts{Scheme: "HTTP", Domain: "Example.COM", Path: "/", OK: true}},
		{"ftp://example.com:21", URLParts{Scheme: "ftp", Domain: "example.com", Port: 21, OK: true}},
		{"http://example.com:0/", URLParts{Scheme: "http", Domain: "example.com", Path: "/", OK: true, Port: -2}},
		{"http://example.com./", URLParts{Scheme: "http", Domain: "example.com.", Path: "/", OK: true}},
		{"http://1.2.3.4/x.exe", URLParts{Scheme: "http", Domain: "1.2.3.4", Path: "/x.exe", Extension: "exe", OK: true}},
		{"http://0001.2.3.4/", URLParts{Scheme: "http", Domain: "0001.2.3.4", Path: "/", OK: true}},
		{"http://[2001:db8::1]:8080/x", URLParts{Scheme: "http", Domain: "[2001:db8::1]", Port: 8080, Path: "/x", OK: true}},
		{"http://[fe80::1%25eth0]/", URLParts{Scheme: "http", Domain: "[fe80::1%25eth0]", Path: "/", OK: true}},
		{"//example.com/x", URLParts{Domain: "example.com", Path: "/x", OK: true}},
		{"http://example.com/a.b/c", URLParts{Scheme: "http", Domain: "example.com", Path: "/a.b/c", Extension: "b/c", OK: true}},
		{"http://example.com/file.", URLParts{Scheme: "http", Domain: "example.com", Path: "/file.", OK: true}},
		{"http://example.com/?q", URLParts{Scheme: "http", Domain: "example.com", Path: "/", Query: "q", OK: true}},
		{"http://example.com#f", URLParts{Scheme: "http", Domain: "example.com", Fragment: "f", OK: true}},
		{"http://exämple.com/ü", URLParts{Scheme: "http", Path: "/ü", OK: true}},
		{"http://example.com/%C3%BC%ff", URLParts{Scheme: "http", Domain: "example.com", Path: "/ü\uFFFD", OK: true}},
		{"/just/a/path.txt", URLParts{Path: "/just/a/path.txt", Extension: "txt", OK: true}},
		{"", URLParts{OK: true}},

		// Registry-based authorities have no host.
		{"http://my_host.example.com/p", URLParts{Scheme: "http", Path: "/p", OK: true}},
		{"http://256.1.1.1/", URLParts{Scheme: "http", Path: "/", OK: true}},
		{"http://1.2.3/", URLParts{Scheme: "http", Path: "/", OK: true}},
		{"http://host:abc/", URLParts{Scheme: "http", Path: "/", OK: true}},
		{"http://a@b@c/", URLParts{Scheme: "http", Path: "/", OK: true}},
		{"http://ex-.com/", URLParts{Scheme: "http", Path: "/", OK: true}},
		{"http://example.123/", URLParts{Scheme: "http", Path: "/", OK: true}},

		// Opaque URIs.
		{"mailto:a@example.com", URLParts{Scheme: "mailto", OK: true}},
		{"example.com:8080/path", URLParts{Scheme: "example.com", OK: true}},
		{"urn:isbn:0451450523#x%41", URLParts{Scheme: "urn", Fragment: "xA", OK: true}},

		// java.net.URI rejects these; java.net.URL takes them, undecoded.
		{"http://example.com/a b", URLParts{Scheme: "http", Domain: "example.com", Path: "/a b", OK: true}},
		{"http://example.com/%zz?a=%zz#%zz", URLParts{Scheme: "http", Domain: "example.com", Path: "/%zz", Query: "a=%zz", Fragment: "%zz", OK: true}},
		{"HTTPS://u:p@exa mple.com:81/x|y", URLParts{Scheme: "https", Domain: "exa mple.com", Port: 81, Path: "/x|y", UserInfo: "u:p", Username: "u", Password: "p", OK: true}},
		{"http://example.com/{x}#a#b", URLParts{Scheme: "http", Domain: "example.com", Path: "/{x}", Fragment: "a#b", OK: true}},
		{"http://[::1]/a b", URLParts{Scheme: "http", Domain: "[::1]", Path: "/a b", OK: true}},
		{"mailto:a b@example.com?subject=x", URLParts{Scheme: "mailto", Path: "a b@example.com", Extension: "com", Query: "subject=x", OK: true}},
		{"http:", URLParts{Scheme: "http", OK: true}},
		{"http://", URLParts{Scheme: "http", OK: true}},

		// Neither parses.
		{"example.com/a b", URLParts{}},
		{"1http://x", URLParts{}},
		{"hxxp://example[.]com/a", URLParts{}},
		{"http://[zz]/", URLParts{}},
		{"http://host:99999999999/a b", URLParts{}},
		{"mailto: ", URLParts{}},
		{"gopher://x/a b", URLParts{}},
	}
	for _, tt := range tests {
		want := tt.want
		want.Original = tt.in
		switch want.Port {
		case 0:
			want.Port = -1
		case -2:
			want.Port = 0
		}
		if got := ParseURL(tt.in); got != want {
			t.Errorf("ParseURL(%q)\n got %+v\nwant %+v", tt.in, got, want)
		}
	}
}

func BenchmarkParseURL(b *testing.B) {
	for b.Loop() {
		ParseURL("https://www.example.com:8443/path/to/file.php?a=1&b=2#top")
	}
}
