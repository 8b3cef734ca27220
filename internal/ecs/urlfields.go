package ecs

// URLPaths are the compiled fields of an ECS url field set under a prefix
// (e.g. threat.indicator.url).
type URLPaths struct {
	Domain, Extension, Fragment, Full, Original, Password, Path, Port, Query, Scheme, UserInfo, Username *Path
}

// NewURLPaths compiles the url fields under prefix. Call it once, in a
// package variable.
func NewURLPaths(prefix string) *URLPaths {
	p := func(name string) *Path { return NewPath(prefix + "." + name) }
	return &URLPaths{
		Domain: p("domain"), Extension: p("extension"), Fragment: p("fragment"), Full: p("full"),
		Original: p("original"), Password: p("password"), Path: p("path"), Port: p("port"), Query: p("query"),
		Scheme: p("scheme"), UserInfo: p("user_info"), Username: p("username"),
	}
}

// PutURL writes the parts of u at p, in sorted order, with u.Original as
// both full and original, as Elastic's threat-intel pipelines write URL
// indicators. Empty parts and a port of -1 are left out.
func (d *Doc) PutURL(p *URLPaths, u *URLParts) {
	d.At(p.Domain).Str(u.Domain)
	d.At(p.Extension).Str(u.Extension)
	d.At(p.Fragment).Str(u.Fragment)
	d.At(p.Full).Str(u.Original)
	d.At(p.Original).Str(u.Original)
	d.At(p.Password).Str(u.Password)
	d.At(p.Path).Str(u.Path)
	if u.Port >= 0 {
		d.At(p.Port).Int(int64(u.Port))
	}
	d.At(p.Query).Str(u.Query)
	d.At(p.Scheme).Str(u.Scheme)
	d.At(p.UserInfo).Str(u.UserInfo)
	d.At(p.Username).Str(u.Username)
}
