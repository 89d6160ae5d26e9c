// Package pod is Kurma's pod runtime on the daemon's side (stage1 of
// DESIGN.md): it validates pod manifests against the image store and the
// host, prepares each pod's directory, cgroup and volumes, starts the
// pod's in-pod init (package stage) in new namespaces, and follows each
// pod through its life (see State) from its state on disk, so that a
// restarted daemon finds its pods again. It keeps spare inits started
// ahead for pods to come (see spare_linux.go). docs/pods.md describes
// the whole runtime.
//
//	m, err := pod.Open(ctx, pod.Options{Dir: "/var/lib/kurma/pods", RunDir: "/run/kurma/pods", Images: store})
//	p, err := m.Create(ctx, pod.CreateOptions{Manifest: pm})   // or Images: []pod.ImageApp{...}
//	st := p.Status()                                          // state, apps, exit codes
//	st, err = p.Wait(ctx)                                     // until it has ended
//	code, err := p.Enter(ctx, pod.EnterOptions{App: "web", Args: []string{"sh"}, TTY: true, ...})
//	err = p.Stop(ctx, 10*time.Second)                         // SIGTERM, grace, SIGKILL, post-stop
//	err = m.Remove(ctx, p.UUID())                             // processes, cgroup, files
//
// On disk, under Options.Dir (mode 0700), what outlives a reboot:
//
//	metadata.key              HMAC key of the metadata service
//	.spares/UUID/             a spare init's part, made ahead (see spareDisk)
//	UUID/APP.upper/, APP.work/  the apps' writable layers
//	UUID/APP.log[.1]          the apps' logs (see package stage)
//	UUID/volumes/NAME/        the backing directory of each empty volume
//	UUID/APP.image/           a copy of the app's image owned by the pod's IDs (user namespace, see userns.go)
//
// Under Options.RunDir (a tmpfs, mode 0700), the runtime state:
//
//	UUID/pod.json             the daemon's record: state, init pid and start time, apps, token
//	UUID/manifest             the reified pod manifest
//	UUID/stage.log            what the in-pod init reports on stderr
//	UUID/...                  the in-pod init's part (see package stage)
package pod
