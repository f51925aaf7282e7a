module goexec/benches/go

go 1.23
