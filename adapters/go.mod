module github.com/mymonit/mymonit/adapters

go 1.26.8

replace github.com/mymonit/mymonit/pkg => ../pkg
