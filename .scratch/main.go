package main

import (
	"fmt"
	"os"

	"github.com/nvbind/nvbind/internal/gpu/simroot"
)

func main() {
	if _, err := simroot.Build(os.Args[1], simroot.Options{GPUs: 4, LDCache: true}); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
