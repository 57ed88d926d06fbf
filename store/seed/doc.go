// Package seed is the seed file format: the JSON file of products,
// licenses and blacklist entries an operator loads into a store. Parse
// checks a file and resolves it into a Plan, which a backend applies in one
// transaction through a Writer. Errors name the place in the file.
package seed
