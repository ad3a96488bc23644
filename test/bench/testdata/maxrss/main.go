// Command maxrss prints its own peak RSS in KiB. Exec'd in place of the
// low-level runtime, it reports the peak of the whole process, so the
// shim's own high-water mark (the kernel keeps it across exec).
package main

import (
	"fmt"
	"syscall"
)

func main() {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	fmt.Println(ru.Maxrss)
}
