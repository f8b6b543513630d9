module gosse

go 1.26
