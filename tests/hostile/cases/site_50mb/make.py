"""A valid YAML site file of 50 MB (one hall with 800,000 label lines)."""
with open("site.yaml", "w") as f:
    f.write("site: {id: s1}\nhalls:\n  - id: h1\n    labels:\n")
    line = "      k%07d: 'padding padding padding padding padding padding'\n"
    for i in range(800_000):
        f.write(line % i)
