open("site.yaml", "wb").write(b"site: {id: s1}\nname: caf\xe9\n")
