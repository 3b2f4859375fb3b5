module github.com/mymonit/mymonit/services/api

go 1.26.8

replace github.com/mymonit/mymonit/pkg => ../../pkg
