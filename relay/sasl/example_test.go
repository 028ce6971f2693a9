package sasl_test

import (
	"fmt"
	"strings"

	"github.com/smarthost-go/smarthost/relay/sasl"
)

// A client takes the strongest mechanism a server offers, and runs it
// against a server of the package.
func Example() {
	users := &sasl.Users{}
	if err := users.SetPassword("tim", "tanstaaf"); err != nil {
		panic(err)
	}
	offered := []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"} // from EHLO's AUTH line
	client, err := sasl.Choose(offered, sasl.Credentials{Username: "tim", Password: "tanstaaf"})
	if err != nil {
		panic(err)
	}
	mech, resp, _ := client.Start()
	server, _ := users.NewServer(mech)
	for {
		challenge, done, err := server.Next(resp)
		if err != nil {
			panic(err)
		}
		if done {
			break
		}
		if resp, err = client.Next(challenge); err != nil {
			panic(err)
		}
	}
	fmt.Println(mech, server.Username(), sasl.Complete(client))
	// Output:
	// SCRAM-SHA-256 tim <nil>
}

// The client side of the SCRAM-SHA-256 exchange of RFC 7677 §3, with the
// RFC's nonce.
func ExampleNewClient() {
	client, _ := sasl.NewClient(sasl.SCRAMSHA256, sasl.Credentials{
		Username: "user",
		Password: "pencil",
		Rand:     strings.NewReader("rOprNGfwEbeRWgbNEkqO"),
	})
	_, first, _ := client.Start()
	fmt.Printf("C: %s\n", first)
	final, _ := client.Next([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	fmt.Printf("C: %s\n", final)
	_, err := client.Next([]byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
	fmt.Println("server verified:", err == nil && sasl.Complete(client) == nil)
	// Output:
	// C: n,,n=user,r=rOprNGfwEbeRWgbNEkqO
	// C: c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=
	// server verified: true
}

// Credentials print without their secrets.
func ExampleCredentials_String() {
	fmt.Println(sasl.Credentials{Username: "tim", Password: "tanstaaf"})
	// Output:
	// {Identity:"" Username:"tim" Password:<redacted> Token:""}
}
