package acitest

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
)

// BusyboxPath is the static busybox the images of Busybox carry (Debian's
// busybox-static, which scripts/setup installs).
const BusyboxPath = "/bin/busybox"

// Busybox is an ACI with a static busybox and its applets in /bin, users
// root, kurmauser (1000) and nobody, groups root, kurmagroup (2000) and
// nogroup, and /opt/owned owned by 3000:3001. app is the manifest's "app"
// (nil: /bin/true as root). skip leaves out one top-level directory of
// the rootfs, for extra to replace. It fails when busybox is missing.
func Busybox(name string, app map[string]any, skip string, extra ...Entry) ([]byte, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, err
	}
	if app == nil {
		app = map[string]any{"exec": []string{"/bin/true"}, "user": "0", "group": "0"}
	}
	var labels []map[string]string
	kv := HostLabels("version", "1.0.0")
	for i := 0; i+1 < len(kv); i += 2 {
		labels = append(labels, map[string]string{"name": kv[i], "value": kv[i+1]})
	}
	manifest, err := json.Marshal(map[string]any{
		"acKind": "ImageManifest", "acVersion": "0.8.11", "name": name,
		"labels": labels, "app": app,
	})
	if err != nil {
		return nil, err
	}
	es := []Entry{File("manifest", string(manifest)), Dir("rootfs")}
	for _, d := range []string{"bin", "etc", "root", "home", "home/user", "opt", "var", "proc", "sys", "dev"} {
		if d != skip {
			es = append(es, Dir("rootfs/"+d))
		}
	}
	tmp := Dir("rootfs/tmp")
	tmp.Mode = 0o1777
	es = append(es, tmp)
	busybox := File("rootfs/bin/busybox", "")
	busybox.Body, busybox.Size, busybox.Mode = bb, int64(len(bb)), 0o755
	es = append(es, busybox)
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			es = append(es, Symlink("rootfs/bin/"+applet, "busybox"))
		}
	}
	es = append(es,
		File("rootfs/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nkurmauser:x:1000:1000::/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
		File("rootfs/etc/group", "root:x:0:\nkurmagroup:x:2000:\nnogroup:x:65534:\n"),
	)
	owned := File("rootfs/opt/owned", "x")
	owned.Uid, owned.Gid = 3000, 3001
	es = append(es, owned)
	es = append(es, extra...)
	return Tar(es...), nil
}
