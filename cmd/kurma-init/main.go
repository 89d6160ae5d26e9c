// Command kurma-init is PID 1 of the Kurma OS: the kernel starts it as
// /init from the initramfs.
package main

import boot "github.com/kurmaos/kurma/init"

func main() { boot.Main() }
