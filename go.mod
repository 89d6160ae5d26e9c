module github.com/kurmaos/kurma

go 1.26.0
