// Package fetch retrieves ACIs for the image store: from a local file,
// from an HTTP(S) URL, or by name through appc discovery (the ac-discovery
// meta tags, their templates and labels). Retrieval is checked before it
// starts and after it ends:
//
//   - the whitelist (Config.Allow) is enforced before any request: a name
//     must be under one of its name prefixes, a URL's host must be one of
//     its hosts. A name authorizes its discovery requests and the URLs its
//     meta tags give (the name's owner delegates to them); a URL
//     authorizes nothing beyond its host, redirects included;
//   - every request goes through the configured proxy, if any;
//   - the download is capped in size and written to an unlinked temporary
//     file, which is what gets imported: the bytes checked are the bytes
//     used;
//   - the armored detached signature (the .asc beside the image) is
//     checked against the keys the trust store holds for the image's name,
//     unless the caller says InsecureSkipSignature;
//   - an image fetched by name must carry that name and the asked labels.
//
// Plain HTTP is refused unless the caller says InsecureAllowHTTP.
// ac-discovery-pubkeys meta tags are ignored: keys come only from the
// operator (see package trust).
package fetch
