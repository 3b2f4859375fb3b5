module github.com/mymonit/mymonit/deploy

go 1.26.8
